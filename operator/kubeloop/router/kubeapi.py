"""Just enough of a Kubernetes API client for the router: GET a list, and stream a watch.

The router reads two kinds of objects in one namespace; the `kubernetes` package (and its thread
pool) would be most of the image for that. One connection per call, bearer token re-read each time
(projected service account tokens rotate), the cluster CA from the service account volume.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httptools
import orjson

CONNECT_SECONDS = 10.0
READ_SECONDS = 30.0  # a plain GET's answer


class KubeApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"API server answered {status}: {message}")
        self.status = status


class _Sink:
    """httptools callbacks: the status once the headers are in, then the body's chunks."""

    def __init__(self) -> None:
        self.headers_done = False
        self.done = False
        self.chunks: deque[bytes] = deque()

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Call:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sink = _Sink()
        self.parser = httptools.HttpResponseParser(self.sink)

    async def feed(self, timeout: float) -> bool:
        """Read once more from the socket; False at the end of the answer."""
        if self.sink.done:
            return False
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            raise ConnectionResetError("the API server closed the connection mid-answer")
        self.parser.feed_data(data)
        return True

    async def status(self, timeout: float) -> int:
        while not self.sink.headers_done:
            await self.feed(timeout)
        return int(self.parser.get_status_code())

    async def body(self, timeout: float) -> bytes:
        while await self.feed(timeout):
            pass
        return b"".join(self.sink.chunks)

    def close(self) -> None:
        self.writer.close()


class KubeApi:
    def __init__(self, base_url: str, token_file: str, ca_file: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"bad API server URL {base_url!r}")
        self.host = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.prefix = parsed.path.rstrip("/")
        self.token_file = Path(token_file)
        self.tls: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            ca = Path(ca_file)
            self.tls = ssl.create_default_context(cafile=str(ca) if ca.is_file() else None)

    def _token(self) -> str | None:
        try:
            return self.token_file.read_text().strip() or None
        except OSError:
            return None

    async def _call(self, path: str, params: Mapping[str, str]) -> _Call:
        target = f"{self.prefix}{path}?{urllib.parse.urlencode(params)}" if params else self.prefix + path
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None
            ),
            CONNECT_SECONDS,
        )
        token = self._token()
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: application/json",
                 "User-Agent: kubeloop-router", "Connection: close"]  # fmt: skip
        if token:
            lines.append(f"Authorization: Bearer {token}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return _Call(reader, writer)

    async def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        call = await self._call(path, params)
        try:
            status = await call.status(READ_SECONDS)
            body = await call.body(READ_SECONDS)
        finally:
            call.close()
        if status != 200:
            raise KubeApiError(status, _message(body))
        document: dict[str, Any] = orjson.loads(body)
        return document

    async def watch(
        self, path: str, params: Mapping[str, str], idle_seconds: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events as they come; ends when the API server ends the watch."""
        call = await self._call(path, params)
        try:
            status = await call.status(READ_SECONDS)
            if status != 200:
                raise KubeApiError(status, _message(await call.body(READ_SECONDS)))
            pending = b""
            while True:
                while call.sink.chunks:
                    pending += call.sink.chunks.popleft()
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield orjson.loads(line)
                if not await call.feed(idle_seconds):
                    return
        finally:
            call.close()


def _message(body: bytes) -> str:
    """The `message` of a Status answer, or the start of whatever else came."""
    try:
        return str(orjson.loads(body).get("message") or body[:200].decode(errors="replace"))
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")
