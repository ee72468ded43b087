"""Host services on 127.0.0.1 made reachable inside pod network namespaces at the same address.

The listening sockets are created inside the pod's namespace (setns in a short-lived thread, since
setns changes only the calling thread); the agent's event loop accepts on them and connects to the
real service in the host namespace. One process, no extra hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import socket
import threading
from concurrent.futures import Future

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def listen_in_namespace(netns: str, ports: list[int]) -> list[socket.socket]:
    result: Future[list[socket.socket]] = Future()

    def work() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(netns, os.O_RDONLY)
        try:
            _setns(target)
            sockets = []
            for port in ports:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
                sock.listen(128)
                sock.setblocking(False)
                sockets.append(sock)
            _setns(home)
            result.set_result(sockets)
        except BaseException as error:
            result.set_exception(error)
        finally:
            os.close(home)
            os.close(target)

    thread = threading.Thread(target=work, name="setns")
    thread.start()
    thread.join()
    return result.result()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class HostPortRelay:
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.loop = asyncio.new_event_loop()
        self.servers: dict[str, list[asyncio.Server]] = {}
        threading.Thread(target=self.loop.run_forever, name="relay", daemon=True).start()

    def open(self, netns: str) -> None:
        sockets = listen_in_namespace(netns, self.ports)
        future = asyncio.run_coroutine_threadsafe(self._serve(sockets), self.loop)
        self.servers[netns] = future.result(timeout=10)

    async def _serve(self, sockets: list[socket.socket]) -> list[asyncio.Server]:
        servers = []
        for sock in sockets:
            port = sock.getsockname()[1]

            async def relay(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = port
            ) -> None:
                try:
                    upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    writer.close()
                    return
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

            servers.append(await asyncio.start_server(relay, sock=sock))
        return servers

    def close(self, netns: str) -> None:
        async def stop(servers: list[asyncio.Server]) -> None:
            for server in servers:
                server.close()

        servers = self.servers.pop(netns, [])
        if servers:
            asyncio.run_coroutine_threadsafe(stop(servers), self.loop).result(timeout=10)
