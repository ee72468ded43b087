"""Copies of predictions to the other side, sent after the client has its answer.

A bounded queue (the table's `shadowQueue`; beyond it copies are dropped and counted) drained by a
fixed number of workers, each copy with the table's `shadowTimeoutMs`. A copy never touches the
client's answer: it starts once that answer is written, and its failures are only counted. When
both sides answered 2xx the two bodies are parsed and compared here, off the response path.
"""

from __future__ import annotations

import asyncio
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
    answer_status: int  # what the answering side said (its body is compared once the copy is back)
    answer_body: bytes
    timeout: float


# Sends a copy's request to a side's pods: (side, head, body, timeout) -> the pod's answer.
Sender = Callable[[Side, bytes, bytes, float], Awaitable[Answer]]


class Copier:
    def __init__(self, send: Sender, recorder: Recorder, workers: int) -> None:
        self._send = send
        self.recorder = recorder
        self.workers = workers
        self.queue: asyncio.Queue[Copy] = asyncio.Queue()
        self.limit = 256
        self.in_flight = 0
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
            self.in_flight += 1
            try:
                await self._one(copy)
            except Exception:  # a bug in one comparison must not stop the worker
                log.exception("copy failed")
            finally:
                self.in_flight -= 1

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
        if not (200 <= answer.status < 300 and 200 <= copy.answer_status < 300):
            return
        mine = parse_answer(answer.body, copy.protocol)
        theirs = parse_answer(copy.answer_body, copy.protocol)
        if mine is None or theirs is None:
            return
        stable, candidate = (mine, theirs) if copy.side is Side.STABLE else (theirs, mine)
        self.recorder.pair(copy.epoch, compare(stable, candidate))

    def idle(self) -> bool:
        return self.queue.empty() and self.in_flight == 0
