"""Every allow-listed estimator exports to ONNX and onnxruntime reproduces scikit-learn.

This is the proof behind the pinned scikit-learn/skl2onnx/onnx/protobuf family in pyproject.toml:
run it before bumping any of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from kubeloop.api.v1alpha1.trainingrun import Estimator
from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.tasks import TrainerTask
from kubeloop.trainer import export
from kubeloop.trainer.estimators import RECIPES
from kubeloop.trainer.train import Stopwatch, model_card, train_and_export
from tests.unit.trainer import datasets
from tests.unit.trainer.helpers import golden_feeds, prepared_in_memory, spec_dict

# Known and pinned for: skl2onnx writes bools into int attributes (rejected from protobuf 7.34, hence
# protobuf<7), and SVC(probability=True) is deprecated in scikit-learn 1.9 (removed in 1.11; pinned <1.10).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Field onnx.AttributeProto.ints:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Attribute `prob[AB]_` was deprecated:FutureWarning"),
]
TASK = TrainerTask(mode="train", spec={}, output="file:///x/", training_run="ns/run", training_run_uid="u")
CASES = [
    pytest.param(e, classes, id=f"{e.value}-{classes or 'regression'}")
    for e in Estimator
    for classes in ([0] if e.is_regressor else [2, 3])
]


def test_every_estimator_of_the_api_is_allow_listed() -> None:
    # Nothing silently dropped: an estimator the API accepts but the trainer cannot build would
    # only fail at run time.
    assert set(RECIPES) == set(Estimator)


@pytest.mark.parametrize(("estimator", "classes"), CASES)
def test_export_reproduces_scikit_learn(estimator: Estimator, classes: int) -> None:
    frame = datasets.regression(500, seed=3) if classes == 0 else datasets.classification(500, 3, classes)
    target = "spend" if classes == 0 else "churn"
    prepared = prepared_in_memory(frame, spec_dict(estimator.value, target))
    trained = train_and_export(prepared, {}, Stopwatch())

    found = trained.fidelity
    assert found.rows == len(prepared.x_test) == 100
    if estimator.is_regressor:
        assert found.label_agreement is None and found.max_rel_diff is not None
        assert found.max_rel_diff <= export.TOLERANCE
    else:
        assert found.label_agreement == 1.0
        assert found.max_abs_diff <= export.TOLERANCE
        assert trained.golden.probabilities is not None
        assert len(trained.golden.probabilities[0]) == classes

    # The golden rows, through JSON and back, replay to the recorded outputs (what the
    # ModelVersion validation does), and match scikit-learn on the same rows.
    card = ModelCard.model_validate_json(model_card(TASK, prepared, trained, files={}).to_json())
    outputs = export.run(trained.onnx, golden_feeds(card.signature, card.golden))
    if estimator.is_regressor:
        np.testing.assert_allclose(outputs["value"].ravel(), card.golden.values or [], rtol=1e-6)
    else:
        assert outputs["label"].ravel().tolist() == card.golden.labels
        np.testing.assert_allclose(outputs["probabilities"], card.golden.probabilities or [], atol=1e-6)
    assert any(v is None for v in card.golden.inputs["tenure"]), "golden rows include missing values"
