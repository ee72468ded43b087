"""Standalone mode: the table and the backends' addresses from a file (KUBELOOP_ROUTING_FILE).

The file is read at start (a bad file stops the router with the reason) and again whenever it
changes, so a test or a bench can move the split without a restart; a bad rewrite is reported and
the previous table stays.
"""

from __future__ import annotations

import asyncio
import logging
import os

from kubeloop.contracts.router import StandaloneRouting, split_address
from kubeloop.router.app import Router

log = logging.getLogger("kubeloop.router")
POLL_SECONDS = 0.5


def apply(router: Router, routing: StandaloneRouting) -> None:
    router.set_table(routing.table)
    for service, port in router.services().items():
        addresses = [split_address(a, port) for a in routing.endpoints.get(service, [])]
        router.set_addresses(service, addresses)


class FileSource:
    def __init__(self, path: str, router: Router) -> None:
        self.path, self.router = path, router
        router.source = f"file:{path}"
        self._seen: tuple[int, int, int] | None = None

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino

    def load(self) -> None:
        """Read and apply the file now; ValueError names the problem."""
        self._seen = self._stamp()
        apply(self.router, StandaloneRouting.load(self.path))
        self.router.problem = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            stamp = self._stamp()
            if stamp is None or stamp == self._seen:
                continue
            try:
                self.load()
            except ValueError as error:
                self.router.problem = str(error)
                log.error("keeping the previous routing table: %s", error)
