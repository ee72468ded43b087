"""`python -m kubeloop.trainer` against a real MinIO: csv and parquet, classification and regression.

Checks the whole artifact contract: the termination message, every file with its recorded sha256,
model.json, profile.json, report.html, and onnxruntime replaying the golden rows from model.onnx.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

import kubeloop
from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.profile import Profile
from kubeloop.contracts.results import TrainingResult
from kubeloop.store.digest import sha256_bytes
from kubeloop.trainer.columns import encode_frame, onnx_feeds
from kubeloop.trainer.prepare import model_columns, parse_spec
from tests.component.trainer.conftest import Bench, make_task
from tests.unit.trainer import datasets
from tests.unit.trainer.helpers import FAST_PARAMS, golden_feeds

KINDS = {"tenure": "float", "monthly": "float", "calls": "integer", "plan": "string", "autopay": "boolean"}
FILES = ["model.json", "model.onnx", "profile.json", "report.html", "validation.json"]
CASES = [
    # HistGradientBoostingClassifier is the estimator whose export needed the protobuf pin.
    pytest.param("classification", "csv", "HistGradientBoostingClassifier", id="classification-csv"),
    pytest.param("classification", "parquet", "LogisticRegression", id="classification-parquet"),
    pytest.param("regression", "csv", "RandomForestRegressor", id="regression-csv"),
    pytest.param("regression", "parquet", "HistGradientBoostingRegressor", id="regression-parquet"),
]


@pytest.mark.parametrize(("task_kind", "file_format", "estimator"), CASES)
def test_train_writes_a_model_that_reproduces_its_golden_rows(
    task_kind: str, file_format: str, estimator: str, bench: Bench
) -> None:
    store, folder = bench.store, bench.folder
    regression = task_kind == "regression"
    frame = datasets.regression(400, seed=11) if regression else datasets.classification(400, seed=11)
    target = "spend" if regression else "churn"
    uri, data = bench.upload(frame, file_format)
    task = make_task(uri, folder, estimator, target, file_format=file_format,
                     algorithm={"params": FAST_PARAMS.get(estimator, {})}, split={"seed": 5})  # fmt: skip

    run = bench.run(task)

    assert run.code == 0, run.stdout + run.stderr
    result = TrainingResult.model_validate(run.message)
    assert (result.outcome, result.reason) == ("Succeeded", "Trained")
    assert result.dataset is not None and result.dataset.sha256 == sha256_bytes(data)
    assert (result.dataset.rows, result.dataset.columns, result.dataset.uri) == (400, 6, uri)
    expected_metrics = {"r2", "mae", "mse", "rmse"} if regression else {
        "accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}  # fmt: skip
    assert set(result.metrics) == expected_metrics
    assert result.metrics["r2" if regression else "accuracy"] > (0.6 if regression else 0.7)
    if "random_state" in result.params:
        assert result.params["random_state"] == 5
    assert result.card == folder + "model.json"

    # Every artifact is in the store with the digest recorded for it.
    assert store.list(folder) == [folder + name for name in FILES]
    card = ModelCard.model_validate_json(store.get_bytes(folder + "model.json"))
    assert sorted(card.files) == sorted(set(FILES) - {"model.json"})
    for name, recorded in card.files.items():
        body = store.get_bytes(folder + name)
        assert (sha256_bytes(body), len(body)) == (recorded.sha256, recorded.size), name
    assert result.artifact == card.files["model.onnx"]

    assert card.model == "churn" and card.estimator == estimator
    assert card.metrics == result.metrics and card.params == result.params
    assert card.lineage.dataset == result.dataset and card.lineage.training_run == "team-a/churn-1"
    assert card.lineage.code_version == kubeloop.__version__ and card.lineage.image == "kubeloop/trainer:test"
    assert {c.name: c.type for c in card.signature.inputs} == KINDS
    assert card.signature.task == task_kind
    assert sorted(card.importances) == sorted(KINDS)
    if not regression:
        assert card.signature.classes == ["no", "yes"]

    # onnxruntime on the downloaded model reproduces the golden outputs ...
    session = ort.InferenceSession(store.get_bytes(folder + "model.onnx"), providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in session.get_inputs()) == sorted(KINDS)
    golden = card.golden
    assert len(next(iter(golden.inputs.values()))) == 20
    assert None in golden.inputs["tenure"] and "" in golden.inputs["plan"]  # the imputers are exercised
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, golden_feeds(card.signature, golden)), strict=True))
    if regression:
        assert card.signature.value_output == "value" and golden.values is not None
        np.testing.assert_allclose(outputs["value"].ravel(), golden.values, rtol=golden.tolerance)
    else:
        assert outputs["label"].ravel().tolist() == golden.labels
        np.testing.assert_allclose(
            outputs["probabilities"], golden.probabilities or [], atol=golden.tolerance
        )

    # ... and is a real model: on the whole dataset it scores like the reported test metrics.
    spec, _ = parse_spec(task.spec)
    columns = model_columns(frame, spec, datasets.FEATURES)
    encoded = encode_frame(frame, columns)
    first = session.run(None, onnx_feeds(encoded, columns))[0].ravel()
    if regression:
        residual = frame["spend"].to_numpy() - first
        assert 1 - residual.var() / frame["spend"].var() > 0.6
    else:
        assert np.mean(first == frame["churn"].to_numpy()) > 0.7

    profile = Profile.model_validate_json(store.get_bytes(folder + "profile.json"))
    assert sorted(profile.features) == sorted(KINDS) and profile.rows == 320 and profile.prediction_rows == 80
    tenure = profile.features["tenure"]
    assert tenure.kind == "numeric" and 0 < tenure.missing_rate < 0.2 and len(tenure.edges) == 11
    assert sum(tenure.counts) == len(tenure.sample) <= 1000
    assert profile.features["plan"].kind == "categorical" and set(profile.features["plan"].counts) == {
        "basic", "pro", "team"}  # fmt: skip
    assert profile.prediction.kind == ("numeric" if regression else "categorical")

    report = store.get_bytes(folder + "report.html").decode()
    assert (
        report.startswith("<!doctype html>")
        and "<script" not in report
        and "://" not in report.replace(uri, "")
    )
    for section in ("Dataset", "Metrics (test split)", "Parameters", "Permutation importance", "Validation"):
        assert section in report
    assert all(metric in report for metric in result.metrics)
    assert json.loads(store.get_bytes(folder + "validation.json"))["ok"] is True

    # Logs: JSON lines with the stages, never the store keys.
    stages = run.stages()
    for stage in (
        "started",
        "dataset-loaded",
        "fitted",
        "evaluated",
        "exported",
        "export-checked",
        "finished",
    ):
        assert stage in stages
    loaded = next(line for line in run.lines if line["stage"] == "dataset-loaded")
    assert (loaded["rows"], loaded["sha256"]) == (400, sha256_bytes(data))
    assert not bench.secrets_in(run.stdout + run.stderr)
