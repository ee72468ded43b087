"""A small HTTP/1.1 client for the model server pods: keep-alive connections pooled per address.

Raw asyncio protocols with httptools' C parser: one write per request, the answer's body kept as the
bytes the server sent. aiohttp's client costs several times more per request, and the router's
latency budget is a fraction of a millisecond.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

import httptools

# uvicorn closes idle keep-alive connections after 5 s: drop ours first, so a request never races
# the server's close on a connection it is about to reuse.
IDLE_SECONDS = 4.0
MAX_IDLE_PER_ADDRESS = 64


class UpstreamError(Exception):
    """The pod did not answer. `sent` tells whether any byte of the request may have reached it."""

    reason = "UpstreamFailed"
    sent = True


class ConnectFailed(UpstreamError):
    reason = "UpstreamConnectFailed"
    sent = False


class ConnectionBroken(UpstreamError):
    reason = "UpstreamConnectionBroken"


class UpstreamTimeout(UpstreamError):
    reason = "UpstreamTimeout"


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Connection(asyncio.Protocol):
    """One keep-alive connection to one pod; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Answer] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._framed = False  # the answer has a length or chunks (else it ends at EOF)
        self._head_request = False
        self._headers_done = False
        self._reusable = False
        # One timer per connection, moved only when a shorter deadline comes: cheaper than a
        # call_later and a cancel per request.
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionBroken(f"bad HTTP answer: {error}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._headers_done and not self._framed:
                self._complete()  # an answer delimited by the end of the connection
            else:
                waiter.set_exception(ConnectionBroken(f"connection closed: {exc or 'EOF'}"))

    # --- httptools callbacks
    def on_message_begin(self) -> None:
        self._headers, self._body, self._headers_done = [], [], False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head_request:  # no body follows; the parser would wait for one, so close after it
            self._reusable = False
            self._complete(keep=False)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._head_request:
            self._complete(keep=self.parser.should_keep_alive())

    # --- requests
    def _complete(self, keep: bool = False) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self._reusable = keep
        status = self.parser.get_status_code()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        waiter.set_result(Answer(status, self._headers, body))

    def _fail(self, error: UpstreamError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # idle: the next request arms the timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._arm(loop)
            return
        self._fail(UpstreamTimeout("no complete answer in time"))
        self.close()  # the answer may still come: this connection cannot carry another request

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            if self._timer_at <= self._deadline:
                return  # fires first, then re-arms for the rest
            self._timer.cancel()
        self._timer_at = self._deadline
        self._timer = loop.call_at(self._deadline, self._check_deadline)

    async def exchange(self, head: bytes, body: bytes, timeout: float, head_request: bool) -> Answer:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._framed = self._headers_done = False
        self._head_request, self._reusable = head_request, False
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        self._deadline = loop.time() + timeout
        self._arm(loop)
        try:
            answer: Answer = await waiter
            return answer
        finally:
            self._waiter = None

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Connections to one pod address; counts requests in flight for least-outstanding balancing."""

    def __init__(self, host: str, port: int, connect_timeout: float) -> None:
        self.host, self.port = host, port
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.connect_timeout = connect_timeout
        self.idle: list[Connection] = []
        self.outstanding = 0
        self.ejected_until = 0.0
        self.closed = False

    async def _connection(self) -> Connection:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(Connection, self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as error:
            raise ConnectFailed(f"cannot connect to {self.address}: {error or 'timeout'}") from None
        return protocol

    async def request(self, head: bytes, body: bytes, timeout: float, head_request: bool = False) -> Answer:
        self.outstanding += 1
        try:
            connection = await self._connection()
            answer = await connection.exchange(head, body, timeout, head_request)
            if connection.reusable and not self.closed and len(self.idle) < MAX_IDLE_PER_ADDRESS:
                connection.idle_since = time.monotonic()
                self.idle.append(connection)
            else:
                connection.close()
            return answer
        finally:
            self.outstanding -= 1

    def close(self) -> None:
        self.closed = True
        for connection in self.idle:
            connection.close()
        self.idle.clear()
