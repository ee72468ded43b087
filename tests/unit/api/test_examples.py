"""Every example manifest parses into its model. The real API server accepting them (schema, CEL
rules, defaults) is tests/cluster/test_crds.py::test_example_is_accepted_and_defaulted."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeloop.api.v1alpha1 import (
    KINDS,
    BatchPrediction,
    ModelDeployment,
    ModelMonitor,
    ModelVersion,
    TrainingRun,
    kind_info,
)
from kubeloop.api.v1alpha1.common import API_VERSION_STRING, parse_duration
from kubeloop.api.v1alpha1.modeldeployment import RolloutStrategy
from kubeloop.api.v1alpha1.trainingrun import Estimator, SearchStrategy
from tests.unit.api.crd_tools import EXAMPLES_DIR, load_yaml

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))


def test_one_example_per_kind() -> None:
    kinds = sorted(load_yaml(path)["kind"] for path in EXAMPLES)
    assert kinds == sorted(kind.kind for kind in KINDS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_parses_into_its_model(path: Path) -> None:
    manifest = load_yaml(path)
    resource = kind_info(manifest["kind"]).resource_model.model_validate(manifest)
    assert resource.api_version == API_VERSION_STRING
    assert resource.metadata.namespace is None  # namespace-agnostic: kubectl apply -n <ns> -f ...


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_pydantic_round_trip_matches_the_manifest_spec(path: Path) -> None:
    manifest = load_yaml(path)
    resource = kind_info(manifest["kind"]).resource_model.model_validate(manifest)
    dumped = resource.model_dump(by_alias=True, mode="json", exclude_unset=True)
    assert dumped["spec"] == manifest["spec"]


def test_churn_examples_tell_one_story() -> None:
    run = TrainingRun.model_validate(load_yaml(EXAMPLES_DIR / "trainingrun-churn.yaml"))
    version = ModelVersion.model_validate(load_yaml(EXAMPLES_DIR / "modelversion-import.yaml"))
    deployment = ModelDeployment.model_validate(load_yaml(EXAMPLES_DIR / "modeldeployment-churn.yaml"))
    monitor = ModelMonitor.model_validate(load_yaml(EXAMPLES_DIR / "modelmonitor-churn.yaml"))
    batch = BatchPrediction.model_validate(load_yaml(EXAMPLES_DIR / "batchprediction-churn.yaml"))

    assert run.spec.model == version.spec.model == deployment.spec.model == "churn"
    assert run.spec.dataset.uri == "s3://kubeloop/datasets/churn/v1.csv"
    assert run.spec.algorithm.estimator is Estimator.HIST_GRADIENT_BOOSTING_CLASSIFIER
    assert run.spec.algorithm.search is not None
    assert run.spec.algorithm.search.strategy is SearchStrategy.RANDOM
    assert version.metadata.name == version.spec.name == "churn-v7"
    assert len(version.spec.artifact.sha256) == 64
    assert deployment.spec.version == version.spec.version
    assert deployment.spec.rollout.strategy is RolloutStrategy.SHADOW_THEN_CANARY
    assert [step.weight for step in deployment.spec.rollout.steps] == [10, 25, 50]
    assert monitor.spec.deployment == deployment.metadata.name
    assert monitor.spec.drift.method == "psi"
    assert monitor.spec.retrain.enabled
    assert monitor.spec.retrain.training_run is not None
    assert monitor.spec.retrain.training_run.name == run.metadata.name
    assert parse_duration(monitor.spec.retrain.cooldown) == 12 * 3600
    assert batch.spec.model == "churn" and batch.spec.version == version.spec.version
    assert batch.spec.schedule == "0 2 * * *" and batch.spec.shards == 4
    assert batch.spec.notify is not None and batch.spec.notify.email is not None
    assert batch.spec.notify.email.sender == "kubeloop@example.com"
