"""The trainer's evaluation metrics, computed with NumPy (the monitor image has no scikit-learn).

Same definitions as trainer/metrics.py: binary tasks score the positive class (the second of the
sorted classes); multiclass tasks macro-average precision, recall, f1 and one-vs-rest roc_auc.
Tests check each against scikit-learn. A metric that is undefined on the data (roc_auc with one
class present) is None.
"""

from __future__ import annotations

import math

import numpy as np

from kubeloop.api.v1alpha1.common import MetricName

REGRESSION = {MetricName.R2, MetricName.MAE, MetricName.MSE, MetricName.RMSE}


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _per_class(
    y: np.ndarray, pred: np.ndarray, classes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, predicted count, actual count) per class."""
    labels = np.asarray(classes, dtype=object)
    actual = (y[:, None] == labels[None, :]).astype(np.int64)
    predicted = (pred[:, None] == labels[None, :]).astype(np.int64)
    return (actual & predicted).sum(axis=0), predicted.sum(axis=0), actual.sum(axis=0)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy.stats.rankdata's default)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.concatenate([starts[1:], [len(values)]])
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2)[group]
    return ranks


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic (ties count half)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> float | None:
    if len(classes) == 2:
        return _binary_auc(y == classes[1], proba[:, 1])
    scores = [_binary_auc(y == c, proba[:, i]) for i, c in enumerate(classes)]
    defined = [s for s in scores if s is not None]
    return float(np.mean(defined)) if len(defined) == len(classes) else None


def log_loss(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    rows = proba / proba.sum(axis=1, keepdims=True)
    eps = np.finfo(rows.dtype).eps
    index = {c: i for i, c in enumerate(classes)}
    columns = np.array([index[v] for v in y.tolist()])
    chosen = np.clip(rows[np.arange(len(y)), columns], eps, 1 - eps)
    return float(-np.mean(np.log(chosen)))


def classification_metric(
    metric: MetricName, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: list[str]
) -> float | None:
    if not len(y):
        return None
    y, pred = np.asarray(y, dtype=object), np.asarray(pred, dtype=object)
    if metric == MetricName.ACCURACY:
        return float(np.mean(y == pred))
    if metric in (MetricName.ROC_AUC, MetricName.LOG_LOSS):
        if proba is None:
            return None
        return roc_auc(y, proba, classes) if metric == MetricName.ROC_AUC else log_loss(y, proba, classes)
    tp, predicted, actual = _per_class(y, pred, classes)
    if metric == MetricName.BALANCED_ACCURACY:  # mean recall over the classes present
        present = actual > 0
        return float(np.mean(tp[present] / actual[present]))
    precision, recall = _safe_ratio(tp, predicted), _safe_ratio(tp, actual)
    values = {
        MetricName.PRECISION: precision,
        MetricName.RECALL: recall,
        MetricName.F1: _safe_ratio(2 * precision * recall, precision + recall),
    }[metric]
    return float(values[1]) if len(classes) == 2 else float(values.mean())


def regression_metric(metric: MetricName, y: np.ndarray, pred: np.ndarray) -> float | None:
    if not len(y):
        return None
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    error = y - pred
    if metric == MetricName.MAE:
        return float(np.mean(np.abs(error)))
    mse = float(np.mean(error**2))
    if metric == MetricName.MSE:
        return mse
    if metric == MetricName.RMSE:
        return math.sqrt(mse)
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum(error**2))
    if total == 0:  # scikit-learn's convention for a constant target
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total


def metric_value(
    metric: MetricName, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: list[str] | None
) -> float | None:
    if metric in REGRESSION:
        return regression_metric(metric, y, pred)
    return classification_metric(metric, y, pred, proba, classes or [])
