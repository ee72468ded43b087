"""The router's HTTP/1.1 listener: httptools' C parser on a raw asyncio protocol.

Requests on one connection are answered in order (pipelined ones wait their turn); bodies are read
whole, up to a limit, before the handler sees them. An ASGI server would add a framework layer per
request that costs more than the whole proxy hop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast

import httptools
import orjson

log = logging.getLogger("kubeloop.router")
KEEPALIVE_SECONDS = 75.0  # idle client connections are closed after this (nginx's default)
MAX_PIPELINED = 32  # stop reading from a client that queued this many requests


@dataclass(slots=True)
class Request:
    method: str
    target: bytes  # path and query, as received
    path: str
    headers: list[tuple[bytes, bytes]]  # names as received
    body: bytes = b""
    keep_alive: bool = True


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""


Handler = Callable[[Request], Awaitable[Response]]
_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
JSON = (b"content-type", b"application/json")


def status_line(status: int) -> bytes:
    return _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()


def json_response(
    status: int, document: object, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, [JSON, *(headers or [])], orjson.dumps(document))


def error_response(status: int, message: str, reason: str) -> Response:
    return json_response(status, {"error": message, "reason": reason})


class Connections:
    """The open client connections, so shutdown can close the idle ones and wait for the others."""

    def __init__(self) -> None:
        self.open: set[HttpProtocol] = set()

    def busy(self) -> int:
        return sum(1 for c in self.open if c.busy)

    def close_idle(self) -> None:
        for connection in list(self.open):
            if not connection.busy:
                connection.close()


class HttpProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler, max_body: int, connections: Connections) -> None:
        self.handler, self.max_body, self.connections = handler, max_body, connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: deque[Request] = deque()
        self.busy = False
        self.closing = False
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._idle: asyncio.TimerHandle | None = None  # one timer, re-armed lazily (not per request)
        self._active = 0.0
        self._paused = False

    # --- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.connections.open.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.connections.open.discard(self)
        if self._idle is not None:
            self._idle.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(error_response(400, "protocol upgrades are not supported", "BadRequest"))
        except httptools.HttpParserError as error:
            self._refuse(error_response(400, f"malformed HTTP request: {error}", "BadRequest"))

    # --- httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = [], [], [], 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length" and value.strip().isdigit() and int(value) > self.max_body:
                self._refuse(error_response(413, f"body larger than {self.max_body} bytes", "BodyTooLarge"))
                return
            if lowered == b"expect" and value.lower() == b"100-continue" and self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._refuse(error_response(413, f"body larger than {self.max_body} bytes", "BodyTooLarge"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.closing:
            return
        target = self._url[0] if len(self._url) == 1 else b"".join(self._url)
        path = target.partition(b"?")[0].decode("latin-1")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        method = self.parser.get_method().decode("ascii")
        request = Request(method, target, path, self._headers, body, self.parser.should_keep_alive())
        self.queue.append(request)
        if len(self.queue) >= MAX_PIPELINED and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._serve())

    # --- answering
    async def _serve(self) -> None:
        try:
            while self.queue and not self.closing:
                request = self.queue.popleft()
                try:
                    response = await self.handler(request)
                except Exception:  # a bug in one request must not take the connection's others down
                    log.exception("request failed", extra={"path": request.path})
                    response = error_response(500, "internal router error", "RouterError")
                self._write(response, request.keep_alive and not self.closing)
                if self._paused and len(self.queue) < MAX_PIPELINED // 2 and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
        finally:
            self.busy = False
            self._arm_idle()

    def _write(self, response: Response, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        parts = [status_line(response.status)]
        for name, value in response.headers:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"content-length: %d\r\n" % len(response.body))
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", response.body)
        transport.write(b"".join(parts))
        if not keep_alive:
            self.close()

    def _refuse(self, response: Response) -> None:
        """Answer a request that cannot be read, and close: the rest of the stream is not trustworthy."""
        self.closing = True
        self.queue.clear()
        if not self.busy:
            self.closing = False
            self._write(response, keep_alive=False)
        self.close()

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._active = loop.time()
        if self._idle is None and not self.closing:
            self._idle = loop.call_at(self._active + KEEPALIVE_SECONDS, self._check_idle)

    def _check_idle(self) -> None:
        self._idle = None
        if self.closing:
            return
        if not self.busy and asyncio.get_running_loop().time() - self._active >= KEEPALIVE_SECONDS:
            self.close()
        else:
            self._arm_idle_at(self._active + KEEPALIVE_SECONDS)

    def _arm_idle_at(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        self._idle = loop.call_at(max(when, loop.time() + 1.0), self._check_idle)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
