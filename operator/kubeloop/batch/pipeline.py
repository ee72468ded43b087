"""Overlap reading, scoring and writing: a reader thread and a writer thread around the scoring loop.

onnxruntime, pyarrow and socket I/O release the GIL, so the three stages run in parallel. Bounded
queues keep at most `depth` chunks waiting on each side: memory stays a few chunks whatever the
input size.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


@dataclass
class _Raised:
    error: BaseException


class Stopwatch:
    """Seconds spent per stage, from any thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def timed(self, stage: str, action: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return action()
        finally:
            self.add(stage, time.perf_counter() - started)


def prefetch(items: Iterator[T], depth: int, watch: Stopwatch, stage: str | None = "read") -> Iterator[T]:
    """`items`, produced by a thread that stays at most `depth` items ahead (timed as `stage`, if any)."""
    waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                started = time.perf_counter()
                item = next(items, _END)
                if stage is not None:
                    watch.add(stage, time.perf_counter() - started)
                _put(waiting, item, stop)
                if item is _END:
                    return
        except BaseException as error:
            _put(waiting, _Raised(error), stop)

    threading.Thread(target=produce, name=f"batch-{stage or 'prefetch'}", daemon=True).start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()


def _put(waiting: queue.Queue[object], item: object, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            waiting.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


class BackgroundWriter(Generic[T]):
    """Runs `write` on each item in order, in its own thread; its first error is raised to the caller."""

    def __init__(self, write: Callable[[T], object], watch: Stopwatch, depth: int = 2) -> None:
        self.write, self.watch = write, watch
        self.waiting: queue.Queue[object] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="batch-write", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.waiting.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # drain: the caller learns of the error at its next put or at close
            try:
                self.watch.timed("write", lambda item=item: self.write(item))  # type: ignore[misc]
            except BaseException as error:
                self.error = error

    def put(self, item: T) -> None:
        if self.error is not None:
            raise self.error
        self.waiting.put(item)

    def close(self) -> None:
        self.waiting.put(_END)
        self.thread.join()
        if self.error is not None:
            raise self.error


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU limit when there is one."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()  # noqa: SIM115
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, -(-int(quota) // int(period))))


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_BYTES = 128 << 10


def return_freed_memory() -> None:
    """Keep the process's memory close to what it holds, chunk after chunk.

    Arrow's default pool (mimalloc) and glibc's dynamic mmap threshold both keep freed chunk buffers
    around; over hundreds of chunks the resident size creeps up by tens of MiB. Arrow's system pool
    with a fixed mmap threshold hands large buffers back to the kernel as soon as they are freed
    (measured: bench/README.md, tests/component/batch/test_memory.py)."""
    import ctypes  # noqa: PLC0415 - only this start-up step needs them
    import ctypes.util  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415

    pa.set_memory_pool(pa.system_memory_pool())
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no mallopt): no tuning
            ctypes.CDLL(name).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
