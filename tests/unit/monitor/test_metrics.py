"""The monitor's NumPy metrics give scikit-learn's numbers, with the trainer's conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from kubeloop.api.v1alpha1.common import MetricName
from kubeloop.monitor.metrics import metric_value


def binary(seed: int = 1, rows: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    classes = ["no", "yes"]
    y = rng.choice(classes, rows, p=[0.7, 0.3])
    score = np.clip((y == "yes") * 0.3 + rng.uniform(0, 0.7, rows), 0, 1)
    score = np.round(score, 2)  # ties, as a forest's probabilities have
    proba = np.column_stack([1 - score, score])
    pred = np.where(score > 0.5, "yes", "no")
    return y, pred, proba, classes


def multiclass(seed: int = 2, rows: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    y = rng.choice(classes, rows)
    raw = rng.uniform(0, 1, (rows, 3)) + np.eye(3)[[classes.index(v) for v in y]] * 0.8
    proba = raw / raw.sum(axis=1, keepdims=True)
    pred = np.asarray(classes)[proba.argmax(axis=1)]
    return y, pred, proba, classes


def sklearn_value(  # noqa: PLR0911
    metric: MetricName, y: np.ndarray, pred: np.ndarray, proba: np.ndarray, classes: list[str]
) -> float:
    """What trainer/metrics.py computes (the same calls)."""
    two = len(classes) == 2
    averaged = (
        {"average": "binary", "pos_label": classes[1]} if two else {"average": "macro", "labels": classes}
    )
    match metric:
        case MetricName.ACCURACY:
            return float(skm.accuracy_score(y, pred))
        case MetricName.BALANCED_ACCURACY:
            return float(skm.balanced_accuracy_score(y, pred))
        case MetricName.ROC_AUC if two:
            return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
        case MetricName.ROC_AUC:
            return float(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
        case MetricName.LOG_LOSS:
            return float(skm.log_loss(y, proba, labels=classes))
        case MetricName.PRECISION:
            return float(skm.precision_score(y, pred, zero_division=0, **averaged))
        case MetricName.RECALL:
            return float(skm.recall_score(y, pred, zero_division=0, **averaged))
        case MetricName.F1:
            return float(skm.f1_score(y, pred, zero_division=0, **averaged))
    raise AssertionError(metric)


CLASSIFICATION = [m for m in MetricName if not m.for_regression]


@pytest.mark.parametrize("metric", CLASSIFICATION)
@pytest.mark.parametrize("data", [binary, multiclass], ids=["binary", "multiclass"])
def test_classification_metrics_equal_scikit_learn(metric: MetricName, data: object) -> None:
    y, pred, proba, classes = data()  # type: ignore[operator]
    ours = metric_value(metric, y, pred, proba, classes)
    assert ours == pytest.approx(sklearn_value(metric, y, pred, proba, classes), rel=1e-9, abs=1e-12)


def test_a_class_never_predicted_scores_zero_like_scikit_learn() -> None:
    y = np.array(["a", "b", "c", "a", "b"])
    pred = np.array(["a", "a", "a", "a", "b"])  # c never predicted: precision undefined -> 0
    for metric in (MetricName.PRECISION, MetricName.RECALL, MetricName.F1, MetricName.BALANCED_ACCURACY):
        expected = sklearn_value(metric, y, pred, np.empty((5, 3)), ["a", "b", "c"])
        assert metric_value(metric, y, pred, None, ["a", "b", "c"]) == pytest.approx(expected)


def test_roc_auc_is_undefined_with_one_class_and_without_probabilities() -> None:
    y, pred, proba, classes = binary()
    only_no = y == "no"
    assert metric_value(MetricName.ROC_AUC, y[only_no], pred[only_no], proba[only_no], classes) is None
    assert metric_value(MetricName.ROC_AUC, y, pred, None, classes) is None
    assert metric_value(MetricName.ACCURACY, y[:0], pred[:0], None, classes) is None


@pytest.mark.parametrize("metric", [MetricName.R2, MetricName.MAE, MetricName.MSE, MetricName.RMSE])
def test_regression_metrics_equal_scikit_learn(metric: MetricName) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(100, 20, 300)
    pred = y + rng.normal(5, 10, 300)
    expected = {
        MetricName.R2: skm.r2_score(y, pred),
        MetricName.MAE: skm.mean_absolute_error(y, pred),
        MetricName.MSE: skm.mean_squared_error(y, pred),
        MetricName.RMSE: math.sqrt(skm.mean_squared_error(y, pred)),
    }[metric]
    assert metric_value(metric, y, pred, None, None) == pytest.approx(expected, rel=1e-12)
