"""Prometheus metrics of one server process; every series carries the model and its version.

The request path touches only pre-bound children (no label lookups per request), and batch
counts are added with numpy (one increment per class, not per row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from kubeloop.serving.inference import OnnxModel, Prediction

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CounterChild = Counter  # prometheus_client returns the same class for a labelled child


class ValueHistogram(Collector):
    """Histogram of regression outputs, filled a whole batch at a time. When a bucket bound is
    negative, prometheus-client exposes the buckets only (no _count/_sum): the +Inf bucket counts."""

    def __init__(
        self, name: str, documentation: str, labels: dict[str, str], bounds: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = np.unique(np.asarray(bounds, dtype=np.float64))
        self.counts = np.zeros(self.bounds.size + 1, dtype=np.int64)
        self.sum = 0.0

    def observe_many(self, values: np.ndarray) -> None:
        finite = values[np.isfinite(values)]
        # side="left": a value equal to a bound belongs to that bound's bucket (Prometheus' le).
        self.counts += np.bincount(
            np.searchsorted(self.bounds, finite, side="left"), minlength=self.counts.size
        )
        self.sum += float(finite.sum(dtype=np.float64))

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.labels))
        cumulative = np.cumsum(self.counts).tolist()
        buckets = [(repr(float(b)), float(c)) for b, c in zip(self.bounds, cumulative, strict=False)]
        buckets.append(("+Inf", float(cumulative[-1])))
        family.add_metric(list(self.labels.values()), buckets, self.sum)
        yield family


def value_bounds(golden_values: Sequence[float] | None) -> list[float]:
    """Buckets at the deciles of the values the model gave at training (golden rows), else a default."""
    if not golden_values:
        return [0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000]
    return [float(q) for q in np.quantile(np.asarray(golden_values, dtype=np.float64), np.linspace(0, 1, 11))]


class ServerMetrics:
    def __init__(self, model: str, version: int) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)  # RSS, CPU, open files
        self.base = {"model": model, "version": str(version)}
        labels = list(self.base)
        self.requests = Counter(
            "kubeloop_server_requests",
            "Requests answered, by endpoint and HTTP status code.",
            [*labels, "endpoint", "code"],
            registry=r,
        )
        self.errors = Counter(
            "kubeloop_server_errors",
            "Requests answered with a 4xx or 5xx, by endpoint and code.",
            [*labels, "endpoint", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "kubeloop_server_request_duration_seconds",
            "Time from body read to response.",
            [*labels, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Counter("kubeloop_server_rows", "Rows scored.", [*labels, "endpoint"], registry=r)
        self.predictions = Counter(
            "kubeloop_server_predictions",
            "Predicted rows per class (classifiers).",
            [*labels, "class"],
            registry=r,
        )
        self.review = Counter(
            "kubeloop_server_review_rows", "Rows flagged for human review.", labels, registry=r
        )
        self.feedback = Counter(
            "kubeloop_server_feedback_items", "Feedback items stored.", [*labels, "source"], registry=r
        )
        stream = [*labels, "stream"]
        self.log_written = Counter(
            "kubeloop_server_log_records_written", "Logged rows written to the store.", stream, registry=r
        )
        self.log_dropped = Counter(
            "kubeloop_server_log_records_dropped",
            "Logged rows dropped because the buffer was full (store unavailable).",
            stream,
            registry=r,
        )
        self.log_failures = Counter(
            "kubeloop_server_log_flush_failures", "Failed uploads of a log file.", stream, registry=r
        )
        self.log_buffered = Gauge(
            "kubeloop_server_log_records_buffered", "Logged rows waiting to be written.", stream, registry=r
        )
        self.ready = Gauge(
            "kubeloop_server_ready", "1 once the model is loaded, checked and warm.", labels, registry=r
        )
        self.info = Gauge(
            "kubeloop_server_model_info",
            "The model served (value 1).",
            [*labels, "sha256", "task"],
            registry=r,
        )
        self._request_children: dict[tuple[str, int], tuple[_CounterChild, Histogram, _CounterChild]] = {}
        self._classes: list[_CounterChild] = []
        self._values: ValueHistogram | None = None
        self._review = self.review.labels(**self.base)

    def bind_model(self, model: OnnxModel, sha256: str) -> None:
        """Pre-create the per-class series (so a class never predicted still shows 0)."""
        self.info.labels(**self.base, sha256=sha256, task=model.signature.task).set(1)
        if model.classification:
            self._classes = [self.predictions.labels(**self.base, **{"class": c}) for c in model.classes]
        else:
            self._values = ValueHistogram(
                "kubeloop_server_prediction_value",
                "Predicted values (regressors).",
                self.base,
                value_bounds(model.card.golden.values),
            )
            self.registry.register(self._values)
        self.ready.labels(**self.base).set(1)

    def observe_request(self, endpoint: str, code: int, seconds: float, rows: int) -> None:
        children = self._request_children.get((endpoint, code))
        if children is None:
            children = self._bind_request(endpoint, code)
        requests, latency, rows_counter = children
        requests.inc()
        latency.observe(seconds)
        if rows:
            rows_counter.inc(rows)
        if code >= 400:
            self.errors.labels(**self.base, endpoint=endpoint, code=str(code)).inc()

    def _bind_request(self, endpoint: str, code: int) -> tuple[_CounterChild, Histogram, _CounterChild]:
        children = (
            self.requests.labels(**self.base, endpoint=endpoint, code=str(code)),
            self.latency.labels(**self.base, endpoint=endpoint),
            self.rows.labels(**self.base, endpoint=endpoint),
        )
        self._request_children[(endpoint, code)] = children
        return children

    def observe_prediction(self, prediction: Prediction, flagged: int) -> None:
        probabilities = prediction.probabilities
        if probabilities is not None and self._classes:
            if probabilities.shape[0] == 1:
                self._classes[int(probabilities[0].argmax())].inc()
            else:
                counts = np.bincount(probabilities.argmax(axis=1), minlength=len(self._classes))
                for index in np.flatnonzero(counts).tolist():
                    self._classes[index].inc(int(counts[index]))
        elif prediction.values is not None and self._values is not None:
            self._values.observe_many(prediction.values)
        if flagged:
            self._review.inc(flagged)

    def stream(self, name: str) -> tuple[_CounterChild, _CounterChild, _CounterChild, Gauge]:
        """The written, dropped, failure and buffered series of one log stream."""
        labels = {**self.base, "stream": name}
        return (
            self.log_written.labels(**labels),
            self.log_dropped.labels(**labels),
            self.log_failures.labels(**labels),
            self.log_buffered.labels(**labels),
        )
