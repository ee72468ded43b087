"""Evaluation metrics, in their natural units (log_loss and errors: lower is better).

Binary tasks score the positive class (the second of the sorted classes); multiclass tasks
macro-average precision, recall, f1 and one-vs-rest roc_auc.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from kubeloop.api.v1alpha1.common import REGRESSION_METRICS, MetricName
from kubeloop.trainer import logs
from kubeloop.trainer.errors import invalid_spec

CLASSIFICATION_METRICS = tuple(m for m in MetricName if m not in REGRESSION_METRICS)
Scores = dict[str, float]


def requested(metrics: Sequence[MetricName], regression: bool) -> list[MetricName]:
    """The spec's metrics, or the standard set for the task; a metric of the other task is refused."""
    if not metrics:
        return list(REGRESSION_METRICS if regression else CLASSIFICATION_METRICS)
    wrong = [m.value for m in metrics if m.for_regression != regression]
    if wrong:
        task = "a regressor" if regression else "a classifier"
        raise invalid_spec(f"spec.metrics {', '.join(wrong)} cannot evaluate {task}")
    return list(metrics)


def default_search_metric(regression: bool) -> MetricName:
    return MetricName.R2 if regression else MetricName.ACCURACY


def _averaged(fn: Callable[..., Any], y: np.ndarray, pred: np.ndarray, classes: np.ndarray) -> float:
    if len(classes) == 2:
        return float(fn(y, pred, average="binary", pos_label=classes[1], zero_division=0))
    return float(fn(y, pred, average="macro", labels=classes, zero_division=0))


def _roc_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))


def classification_metric(
    metric: MetricName, y: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes: np.ndarray
) -> float:
    match metric:
        case MetricName.ACCURACY:
            return float(skm.accuracy_score(y, pred))
        case MetricName.BALANCED_ACCURACY:
            return float(skm.balanced_accuracy_score(y, pred))
        case MetricName.ROC_AUC:
            return _roc_auc(y, proba, classes)
        case MetricName.LOG_LOSS:
            return float(skm.log_loss(y, proba, labels=classes))
    averaged = {MetricName.PRECISION: skm.precision_score, MetricName.RECALL: skm.recall_score,
                MetricName.F1: skm.f1_score}  # fmt: skip
    if metric not in averaged:
        raise ValueError(f"{metric} is not a classification metric")
    return _averaged(averaged[metric], y, pred, classes)


def regression_metric(metric: MetricName, y: np.ndarray, pred: np.ndarray) -> float:
    match metric:
        case MetricName.R2:
            return float(skm.r2_score(y, pred))
        case MetricName.MAE:
            return float(skm.mean_absolute_error(y, pred))
        case MetricName.MSE:
            return float(skm.mean_squared_error(y, pred))
        case MetricName.RMSE:
            return float(math.sqrt(skm.mean_squared_error(y, pred)))
    raise ValueError(f"{metric} is not a regression metric")


@dataclass(frozen=True)
class Predictions:
    """What a model answered on one split: computed once, then scored by every metric."""

    labels: np.ndarray  # or values, for regressors
    proba: np.ndarray | None
    classes: np.ndarray | None

    @classmethod
    def of(cls, model: Any, x: Any, need_proba: bool) -> Predictions:
        if not hasattr(model, "predict_proba"):
            return cls(np.asarray(model.predict(x)), None, None)
        proba = np.asarray(model.predict_proba(x)) if need_proba else None
        return cls(np.asarray(model.predict(x)), proba, np.asarray(model.classes_))

    def score(self, metric: MetricName, y: np.ndarray) -> float:
        if metric.for_regression:
            return regression_metric(metric, y, self.labels)
        assert self.classes is not None, f"{metric.value} needs a classifier"
        proba = self.proba if self.proba is not None else np.empty(0)
        return classification_metric(metric, y, self.labels, proba, self.classes)


def _needs_proba(metrics: Sequence[MetricName]) -> bool:
    return any(m in (MetricName.ROC_AUC, MetricName.LOG_LOSS) for m in metrics)


def metric_of(model: Any, metric: MetricName, x: Any, y: np.ndarray) -> float:
    """`metric` of a fitted model on (x, y)."""
    return Predictions.of(model, x, _needs_proba([metric])).score(metric, y)


def evaluate(model: Any, metrics: Sequence[MetricName], x: Any, y: np.ndarray) -> Scores:
    """Each metric on the test split. One that cannot be computed (e.g. roc_auc when the split holds
    a single class) is left out with a warning rather than failing the run."""
    predictions = Predictions.of(model, x, _needs_proba(metrics))
    scores: Scores = {}
    for metric in metrics:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                value = predictions.score(metric, y)
        except ValueError as error:
            value, why = math.nan, str(error)
        else:
            why = "undefined on this split"
        if math.isfinite(value):
            scores[metric.value] = value
        else:
            logs.warning("evaluate", f"{metric.value} left out: {why}", metric=metric.value)
    return scores


def scorer(metric: MetricName) -> Callable[[Any, Any, np.ndarray], float]:
    """A scikit-learn scorer (greater is better) for cross-validation and permutation importance."""
    sign = 1.0 if metric.higher_is_better else -1.0

    def score(model: Any, x: Any, y: np.ndarray) -> float:
        return sign * metric_of(model, metric, x, y)

    return score
