"""Prometheus metrics of the operator: reconciles, errors and durations per kind; training failures,
rollout outcomes, the rollout in progress, drift gauges and batch runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("kubeloop_reconcile_total", "Reconciles by kind and outcome.", ["kind", "outcome"])
RECONCILE_ERRORS = Counter("kubeloop_reconcile_errors_total", "Reconciles that raised, by kind.", ["kind"])
RECONCILE_SECONDS = Histogram(
    "kubeloop_reconcile_duration_seconds", "Time spent in one reconcile, by kind.", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip


# Label names as the chart's alerts use them (namespace, modelmonitor).
DRIFT_SCORE = Gauge("kubeloop_monitor_drift_score", "Drift score of a feature in the monitor's last run "
                    "(its top features).", ["namespace", "modelmonitor", "feature"])  # fmt: skip
DRIFT_DETECTED = Gauge("kubeloop_monitor_drift_detected", "1 when the monitor's last run found input drift.",
                       ["namespace", "modelmonitor"])  # fmt: skip
_monitor_features: dict[tuple[str, str], set[str]] = {}


def set_monitor_gauges(namespace: str, monitor: str, scores: dict[str, float], detected: bool) -> None:
    """The gauges of one monitor: features that left its top list lose their series."""
    key = (namespace, monitor)
    for gone in _monitor_features.get(key, set()) - set(scores):
        DRIFT_SCORE.remove(namespace, monitor, gone)
    for feature, score in scores.items():
        DRIFT_SCORE.labels(namespace, monitor, feature).set(score)
    _monitor_features[key] = set(scores)
    DRIFT_DETECTED.labels(namespace, monitor).set(1 if detected else 0)


def forget_monitor(namespace: str, monitor: str) -> None:
    for feature in _monitor_features.pop((namespace, monitor), set()):
        DRIFT_SCORE.remove(namespace, monitor, feature)
    with suppress(KeyError):  # never exported (no run read since the operator started)
        DRIFT_DETECTED.remove(namespace, monitor)


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


# --- what the loop does (the chart's alerts and dashboard read these) --------------------------------

TRAINING_FAILURES = Counter(
    "kubeloop_trainingrun_failures_total", "TrainingRuns that failed.", ["namespace", "trainingrun", "reason"]
)
ROLLBACKS = Counter(
    "kubeloop_rollout_rollbacks_total",
    "Rollouts rolled back or aborted.",
    ["namespace", "modeldeployment", "version", "reason"],
)
PROMOTIONS = Counter(
    "kubeloop_rollout_promotions_total",
    "Versions promoted to stable.",
    ["namespace", "modeldeployment", "version"],
)
CANDIDATE_WEIGHT = Gauge(
    "kubeloop_rollout_candidate_weight",
    "Percent of requests the candidate answers.",
    ["namespace", "modeldeployment"],
)
AGREEMENT = Gauge(
    "kubeloop_rollout_agreement",
    "Share of compared rows where candidate and stable agree (current step).",
    ["namespace", "modeldeployment"],
)


def rollout_observed(namespace: str, name: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Count the rollouts that ended in this reconcile and set the gauges of the one in progress."""
    for record in (after.get("history") or [])[len(before.get("history") or []) :]:
        version = str(record["version"])
        if record["outcome"] == "Promoted":
            PROMOTIONS.labels(namespace, name, version).inc()
        else:
            ROLLBACKS.labels(namespace, name, version, record["reason"].split(":")[0]).inc()
    CANDIDATE_WEIGHT.labels(namespace, name).set((after.get("candidate") or {}).get("weight", 0))
    agreement = (after.get("comparison") or {}).get("agreement")
    if agreement is not None:
        AGREEMENT.labels(namespace, name).set(agreement)
