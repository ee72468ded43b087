"""Prometheus metrics of the operator itself: reconciles, errors and durations per kind; batch runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("kubeloop_reconcile_total", "Reconciles by kind and outcome.", ["kind", "outcome"])
RECONCILE_ERRORS = Counter("kubeloop_reconcile_errors_total", "Reconciles that raised, by kind.", ["kind"])
RECONCILE_SECONDS = Histogram(
    "kubeloop_reconcile_duration_seconds", "Time spent in one reconcile, by kind.", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip


BATCH = ["namespace", "batch_prediction"]
BATCH_RUNS = Counter(
    "kubeloop_batch_runs_total", "Finished batch prediction runs, by outcome.", [*BATCH, "outcome"]
)
BATCH_ROWS = Counter(
    "kubeloop_batch_rows_total", "Rows of finished batch runs: read, scored or rejected.", [*BATCH, "kind"]
)
BATCH_LAST_ROWS = Gauge(
    "kubeloop_batch_last_run_rows", "Rows of the latest finished run, by kind.", [*BATCH, "kind"]
)
BATCH_LAST_SECONDS = Gauge(
    "kubeloop_batch_last_run_duration_seconds", "Duration of the latest finished run.", BATCH
)
BATCH_LAST_SUCCESS = Gauge(
    "kubeloop_batch_last_run_success", "1 when the latest finished run succeeded, else 0.", BATCH
)
BATCH_NOTIFICATIONS = Counter(
    "kubeloop_batch_notifications_total", "Run notifications that ended, by outcome (Sent, Failed).",
    [*BATCH, "outcome"],
)  # fmt: skip


def batch_run_finished(namespace: str, name: str, run: dict[str, Any]) -> None:
    BATCH_RUNS.labels(namespace, name, run["phase"]).inc()
    for kind, key in (("read", "rowsIn"), ("scored", "rowsOut"), ("rejected", "rejects")):
        BATCH_ROWS.labels(namespace, name, kind).inc(run.get(key) or 0)
        BATCH_LAST_ROWS.labels(namespace, name, kind).set(run.get(key) or 0)
    BATCH_LAST_SECONDS.labels(namespace, name).set(run.get("durationSeconds") or 0)
    BATCH_LAST_SUCCESS.labels(namespace, name).set(1 if run["phase"] == "Succeeded" else 0)


def batch_notification_finished(namespace: str, name: str, phase: str) -> None:
    BATCH_NOTIFICATIONS.labels(namespace, name, phase).inc()


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
