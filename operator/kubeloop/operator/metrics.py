"""Prometheus metrics of the operator itself: reconciles, errors and durations per kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, start_http_server

RECONCILES = Counter("kubeloop_reconcile_total", "Reconciles by kind and outcome.", ["kind", "outcome"])
RECONCILE_ERRORS = Counter("kubeloop_reconcile_errors_total", "Reconciles that raised, by kind.", ["kind"])
RECONCILE_SECONDS = Histogram(
    "kubeloop_reconcile_duration_seconds", "Time spent in one reconcile, by kind.", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip


@contextmanager
def reconcile_observed(kind: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(kind).inc()
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "ok").inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


def serve(host: str, port: int) -> None:
    if port:
        start_http_server(port, addr=host)
