"""Copies of predictions to the other side, fire-and-forget, compared once both answers are in.

A bounded queue (the table's `shadowQueue`; beyond it copies are dropped and counted) drained by a
fixed number of workers, each copy with the table's `shadowTimeoutMs`. A copy leaves alongside the
request that answers the client (as Envoy's mirroring does), so both sides compute at the same
time, but nothing of the client's answer waits for it: its failures are only counted, and when
both sides answered 2xx the two bodies are parsed and compared here, after the client's answer is
written.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubeloop.router.compare import compare, parse_answer
from kubeloop.router.decide import Side
from kubeloop.router.stats import Recorder
from kubeloop.router.upstream import Answer, UpstreamError

log = logging.getLogger("kubeloop.router")


@dataclass(slots=True)
class Copy:
    epoch: str
    side: Side  # where the copy goes
    version: int
    protocol: str
    head: bytes  # the request line and headers, marked as a copy
    body: bytes
    timeout: float
    # The answering side's answer, set once the client has it (None: nothing to compare with).
    answered: asyncio.Future[Answer | None]


# Sends a copy's request to a side's pods: (side, head, body, timeout) -> the pod's answer.
Sender = Callable[[Side, bytes, bytes, float], Awaitable[Answer]]


class Copier:
    def __init__(self, send: Sender, recorder: Recorder, workers: int) -> None:
        self._send = send
        self.recorder = recorder
        self.workers = workers
        self.queue: asyncio.Queue[Copy] = asyncio.Queue()
        self.limit = 256
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def offer(self, copy: Copy) -> None:
        if self.queue.qsize() >= self.limit:
            self.recorder.copy_dropped(copy.epoch)
            return
        self.queue.put_nowait(copy)

    async def _work(self) -> None:
        while True:
            copy = await self.queue.get()
            try:
                await self._one(copy)
            except Exception:  # a bug in one copy must not stop the worker
                log.exception("copy failed")

    async def _one(self, copy: Copy) -> None:
        self.recorder.copy_sent()
        started = time.perf_counter()
        try:
            answer = await self._send(copy.side, copy.head, copy.body, copy.timeout)
        except UpstreamError as error:
            latency = time.perf_counter() - started
            self.recorder.side(copy.epoch, copy.side, copy.version, latency_s=latency, error=True, copy=True)
            self.recorder.copy_failed(copy.epoch)
            log.debug("copy to %s failed: %s", copy.side, error)
            return
        latency = time.perf_counter() - started
        failed = answer.status >= 500
        self.recorder.side(copy.epoch, copy.side, copy.version, latency_s=latency, error=failed, copy=True)
        if failed:
            self.recorder.copy_failed(copy.epoch)
            return
        if not 200 <= answer.status < 300:
            return
        # The worker is free again at once: the comparison runs when the answering side is in.
        copy.answered.add_done_callback(functools.partial(self._compare, copy, answer))

    def _compare(self, copy: Copy, answer: Answer, answered: asyncio.Future[Answer | None]) -> None:
        try:
            first = answered.result()
            if first is None or not 200 <= first.status < 300:
                return
            mine = parse_answer(answer.body, copy.protocol)
            theirs = parse_answer(first.body, copy.protocol)
            if mine is None or theirs is None:
                return
            stable, candidate = (mine, theirs) if copy.side is Side.STABLE else (theirs, mine)
            self.recorder.pair(copy.epoch, compare(stable, candidate))
        except Exception:  # a bug in one comparison must not go unnoticed, nor stop the others
            log.exception("comparison failed")
