"""The allow-list, parameter handling, and metrics for binary, multiclass and regression tasks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from kubeloop.api.v1alpha1.common import MetricName
from kubeloop.api.v1alpha1.trainingrun import Estimator
from kubeloop.trainer.errors import TrainerFailure
from kubeloop.trainer.estimators import allowed_names, build, effective_params, resolve
from kubeloop.trainer.metrics import CLASSIFICATION_METRICS, classification_metric, evaluate, requested
from kubeloop.trainer.prepare import parse_spec
from tests.unit.trainer.helpers import spec_dict


@pytest.mark.parametrize("name", ["sklearn.svm.LinearSVC", "os.system", "LinearSVC", "", None, {"x": 1}])
def test_an_estimator_outside_the_allow_list_is_refused_with_the_list(name: object) -> None:
    with pytest.raises(TrainerFailure, match="is not allowed; choose one of: LogisticRegression, ") as raised:
        resolve(name)
    assert raised.value.reason == "InvalidSpec" and raised.value.exit_code == 2
    assert len(allowed_names()) == len(Estimator)


def test_spec_errors_name_the_field() -> None:
    spec = spec_dict("Ridge", "spend", split={"testFraction": 1.5})
    with pytest.raises(TrainerFailure, match=r"spec\.split\.testFraction: Input should be less than 1"):
        parse_spec(spec)


def test_params_defaults_seed_and_refusals() -> None:
    assert effective_params(Estimator.RANDOM_FOREST_CLASSIFIER, {"n_estimators": 5}, 7) == {
        "n_estimators": 5, "random_state": 7}  # fmt: skip
    assert effective_params(Estimator.RIDGE, {"random_state": 3}, 7)["random_state"] == 3
    assert "random_state" not in effective_params(Estimator.LINEAR_REGRESSION, {}, 7)
    assert effective_params(Estimator.SVC, {}, 1)["probability"] is True
    with pytest.raises(TrainerFailure, match="SVC needs probability=True"):
        effective_params(Estimator.SVC, {"probability": False}, 1)
    with pytest.raises(TrainerFailure, match=r"Ridge has no parameter\(s\) depth; it takes: alpha"):
        effective_params(Estimator.RIDGE, {"depth": 3}, 1)
    assert type(build(Estimator.K_NEIGHBORS_REGRESSOR, {"n_neighbors": 3})).__name__ == "KNeighborsRegressor"


def test_requested_metrics_default_to_the_task_set_and_must_fit_the_task() -> None:
    assert requested([], regression=True) == [MetricName.R2, MetricName.MAE, MetricName.MSE, MetricName.RMSE]
    assert (
        requested([], regression=False) == list(CLASSIFICATION_METRICS) and len(CLASSIFICATION_METRICS) == 7
    )
    with pytest.raises(TrainerFailure, match=r"spec\.metrics rmse cannot evaluate a classifier"):
        requested([MetricName.ACCURACY, MetricName.RMSE], regression=False)


def test_binary_metrics_score_the_positive_class() -> None:
    classes = np.array(["no", "yes"])
    y = np.array(["no", "no", "yes", "yes"])
    pred = np.array(["no", "yes", "yes", "yes"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    assert classification_metric(MetricName.PRECISION, y, pred, proba, classes) == pytest.approx(2 / 3)
    assert classification_metric(MetricName.RECALL, y, pred, proba, classes) == 1.0
    assert classification_metric(MetricName.ROC_AUC, y, pred, proba, classes) == 1.0
    assert classification_metric(MetricName.BALANCED_ACCURACY, y, pred, proba, classes) == 0.75


def test_multiclass_metrics_are_macro_averaged() -> None:
    classes = np.array([0, 1, 2])
    y, pred = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.3, 0.6], [0.1, 0.1, 0.8], [0.2, 0.2, 0.6]])
    assert classification_metric(MetricName.RECALL, y, pred, proba, classes) == pytest.approx((1 + 0 + 1) / 3)
    assert classification_metric(MetricName.F1, y, pred, proba, classes) == pytest.approx((1 + 0 + 0.8) / 3)
    assert classification_metric(MetricName.LOG_LOSS, y, pred, proba, classes) > 0
    assert 0 <= classification_metric(MetricName.ROC_AUC, y, pred, proba, classes) <= 1


def test_a_metric_that_cannot_be_computed_is_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = np.zeros((6, 1)), np.array(["a"] * 3 + ["b"] * 3)
    model = DummyClassifier(strategy="most_frequent").fit(x, y)
    scores = evaluate(model, [MetricName.ACCURACY, MetricName.ROC_AUC], x[:3], y[:3])  # one class only
    assert scores == {"accuracy": 1.0}
    assert '"stage": "evaluate"' in capsys.readouterr().out
