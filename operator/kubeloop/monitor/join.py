"""Live performance with delayed labels: logged predictions joined with feedback by (request id, row).

Feedback is read first and indexed (it is the smaller stream, and the index is capped); the
request logs then stream past it, and only the predictions that have a label are kept. Requests
younger than the label delay are left out: their labels are not due yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from kubeloop.api.v1alpha1.common import MetricName
from kubeloop.contracts.monitoring import PerformancePoint, PerformanceReport, PerformanceRule
from kubeloop.monitor.metrics import metric_value

MIN_LABELS_PER_POINT = 20  # an hour with fewer labels shows no value in the trend


def actual_text(value: Any) -> str:
    """A classification label as the server checked it (str(actual) must be one of the classes)."""
    return str(value)


@dataclass
class FeedbackIndex:
    """(request id -> row -> actual value), capped at `limit` items (later labels win)."""

    limit: int
    by_request: dict[str, dict[int, Any]] = field(default_factory=dict)
    items: int = 0
    dropped: int = 0

    def add(self, record: dict[str, Any]) -> None:
        request, row, actual = record.get("requestId"), record.get("row", 0), record.get("actual")
        if not isinstance(request, str) or not isinstance(row, int) or actual is None:
            return
        rows = self.by_request.get(request)
        if rows is None:
            if self.items >= self.limit:
                self.dropped += 1
                return
            rows = self.by_request[request] = {}
        if row not in rows:
            self.items += 1
        rows[row] = actual


@dataclass
class Labelled:
    """The predictions that received a label, in arrival order."""

    regression: bool
    actual: list[Any] = field(default_factory=list)
    predicted: list[Any] = field(default_factory=list)
    probabilities: list[list[float]] = field(default_factory=list)
    hours: list[datetime] = field(default_factory=list)
    eligible: int = 0  # logged rows old enough to have a label

    def collect(self, record: dict[str, Any], labels: dict[int, Any], at: datetime) -> None:
        outputs = record.get("outputs") or {}
        predicted = outputs.get("value") if self.regression else outputs.get("label")
        if not isinstance(predicted, list):
            return
        probabilities = outputs.get("probabilities")
        hour = at.replace(minute=0, second=0, microsecond=0)
        for row, actual in sorted(labels.items()):  # one request's labels: a handful, not the window
            if 0 <= row < len(predicted):
                self.actual.append(float(actual) if self.regression else actual_text(actual))
                self.predicted.append(predicted[row] if self.regression else actual_text(predicted[row]))
                if isinstance(probabilities, list) and row < len(probabilities):
                    self.probabilities.append(probabilities[row])
                self.hours.append(hour)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        kind = np.float64 if self.regression else object
        proba = None
        if not self.regression and self.probabilities and len(self.probabilities) == len(self.actual):
            proba = np.asarray(self.probabilities, dtype=np.float64)
        return np.asarray(self.actual, dtype=kind), np.asarray(self.predicted, dtype=kind), proba


def drop_of(metric: MetricName, value: float, baseline: float) -> float:
    """How much worse `value` is than `baseline`, in the metric's units (> 0: worse)."""
    return baseline - value if metric.higher_is_better else value - baseline


def performance_report(
    rule: PerformanceRule,
    labelled: Labelled,
    feedback: FeedbackIndex,
    baseline_metrics: dict[str, float],
    classes: list[str] | None,
) -> PerformanceReport:
    metric = MetricName(rule.metric)
    report = PerformanceReport(
        metric=metric.value,
        status="Measured",
        max_drop=rule.max_drop,
        labeled=len(labelled.actual),
        eligible=labelled.eligible,
        feedback_items=feedback.items,
        baseline=baseline_metrics.get(metric.value),
    )
    if metric.for_regression != labelled.regression:
        report.status, report.message = "NotApplicable", f"{metric.value} does not apply to this model's task"
        return report
    y, pred, proba = labelled.arrays()
    report.value = metric_value(metric, y, pred, proba, classes) if len(y) else None
    report.over_time = _over_time(metric, labelled, classes)
    if report.labeled < rule.min_labeled:
        report.status = "InsufficientLabels"
        report.message = f"{report.labeled} labelled predictions, {rule.min_labeled} needed"
    elif report.baseline is None:
        report.status, report.message = "NoBaseline", f"the model version records no {metric.value}"
    elif report.value is None:
        report.status, report.message = "InsufficientLabels", f"{metric.value} is undefined on these labels"
    else:
        report.drop = drop_of(metric, report.value, report.baseline)
        report.degraded = report.drop > rule.max_drop
        report.message = (
            f"{metric.value} {report.value:.4g} on {report.labeled} labelled predictions "
            f"vs {report.baseline:.4g} at training (drop {report.drop:.4g}, allowed {rule.max_drop:g})"
        )
    return report


def _over_time(metric: MetricName, labelled: Labelled, classes: list[str] | None) -> list[PerformancePoint]:
    if not labelled.hours:
        return []
    y, pred, proba = labelled.arrays()
    hours = np.asarray([h.timestamp() for h in labelled.hours])
    points = []
    for hour in np.unique(hours):  # one step per hour of the window
        rows = hours == hour
        count = int(rows.sum())
        value = None
        if count >= MIN_LABELS_PER_POINT:
            value = metric_value(
                metric, y[rows], pred[rows], proba[rows] if proba is not None else None, classes
            )
        start = datetime.fromtimestamp(float(hour), UTC)
        points.append(PerformancePoint(start=start, labeled=count, value=value))
    return points


def label_cutoff(window_end: datetime, rule: PerformanceRule) -> datetime:
    return window_end - timedelta(seconds=rule.label_delay_seconds)
