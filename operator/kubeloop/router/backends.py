"""One version's pods: least-outstanding balancing, passive ejection, one retry on a connect failure."""

from __future__ import annotations

import logging
import time

from kubeloop.router.upstream import Answer, ConnectFailed, ConnectionBroken, Pool, UpstreamError

log = logging.getLogger("kubeloop.router")


class NoPods(UpstreamError):
    """The backend has no ready address."""

    reason = "NoReadyBackend"
    sent = False


class Pods:
    """The ready addresses of one backend Service and a connection pool for each."""

    def __init__(self, service: str, connect_timeout: float, eject_seconds: float) -> None:
        self.service = service
        self.connect_timeout, self.eject_seconds = connect_timeout, eject_seconds
        self.pools: list[Pool] = []
        self._next = 0

    @property
    def addresses(self) -> list[str]:
        return [pool.address for pool in self.pools]

    def ejected(self) -> list[str]:
        now = time.monotonic()
        return [pool.address for pool in self.pools if pool.ejected_until > now]

    def set_addresses(self, addresses: list[tuple[str, int]]) -> None:
        """Keep the pools (and their connections) of addresses still listed; close the others."""
        kept = {(pool.host, pool.port): pool for pool in self.pools}
        pools = []
        for host, port in dict.fromkeys(addresses):
            pool = kept.pop((host, port), None)
            pools.append(pool or Pool(host, port, self.connect_timeout))
        for gone in kept.values():
            gone.close()
        self.pools = pools

    def close(self) -> None:
        for pool in self.pools:
            pool.close()
        self.pools = []

    def pick(self, exclude: Pool | None = None) -> Pool | None:
        """The pod with the fewest requests in flight, rotating among equals; ejected pods only when
        every pod is ejected (better a pod that may have recovered than no answer at all)."""
        pools = self.pools
        count = len(pools)
        if count == 1:
            only = pools[0]
            return None if only is exclude else only
        now = time.monotonic()
        best: Pool | None = None
        fallback: Pool | None = None
        start = self._next = (self._next + 1) % count if count else 0
        for offset in range(count):
            pool = pools[(start + offset) % count]
            if pool is exclude:
                continue
            if pool.ejected_until > now:
                if fallback is None or pool.ejected_until < fallback.ejected_until:
                    fallback = pool
            elif best is None or pool.outstanding < best.outstanding:
                best = pool
        return best or fallback

    def eject(self, pool: Pool, error: UpstreamError) -> None:
        if self.eject_seconds and pool.ejected_until <= time.monotonic():
            log.warning(
                "ejecting a pod of %s for %.0fs: %s",
                self.service,
                self.eject_seconds,
                error,
                extra={"pod": pool.address},
            )
        pool.ejected_until = time.monotonic() + self.eject_seconds

    async def send(self, head: bytes, body: bytes, timeout: float, head_request: bool = False) -> Answer:
        """The answer of one pod; a pod that cannot be reached is ejected and, since nothing reached
        it, the request goes once more to another pod."""
        pool = self.pick()
        if pool is None:
            raise NoPods(f"no ready pod behind service {self.service}")
        try:
            return await pool.request(head, body, timeout, head_request)
        except ConnectFailed as error:
            self.eject(pool, error)
            retry = self.pick(exclude=pool)
            if retry is None:
                raise
        except ConnectionBroken as error:
            self.eject(pool, error)
            raise
        try:
            return await retry.request(head, body, timeout, head_request)
        except (ConnectFailed, ConnectionBroken) as error:
            self.eject(retry, error)
            raise
