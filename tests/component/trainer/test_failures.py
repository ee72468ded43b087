"""Permanent failures end with exit code 2 and say why: invalid data, a refused spec, a missing dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kubeloop.contracts.results import TrainingResult
from kubeloop.contracts.tasks import EXIT_PERMANENT
from kubeloop.trainer.main import main
from tests.component.trainer.conftest import Bench, make_task
from tests.unit.trainer import datasets

RULES = {
    "requiredColumns": [{"name": "region", "type": "string"}, {"name": "calls", "type": "integer"}],
    "maxMissingFraction": 0.03,
    "allowedCategories": {"plan": ["basic", "pro"]},
    "minRows": 1000,
    "labelBalance": {"minClassFraction": 0.2},
}


def test_invalid_data_is_reported_rule_by_rule_and_nothing_is_trained(bench: Bench) -> None:
    frame = datasets.classification(300, seed=2)
    frame["churn"] = np.where(np.arange(300) < 30, "yes", "no")
    frame["calls"] = frame["calls"].astype(object)
    frame.loc[[0, 1], "calls"] = "lots"
    teams = int((frame["plan"] == "team").sum())
    uri, _ = bench.upload(frame, "csv")

    run = bench.run(
        make_task(uri, bench.folder, "LogisticRegression", "churn", dataset={"validation": RULES})
    )

    assert run.code == EXIT_PERMANENT, run.stdout + run.stderr
    result = TrainingResult.model_validate(run.message)
    assert (result.outcome, result.reason) == ("DataInvalid", "DataValidationFailed")
    assert [(v.rule, v.column, v.count) for v in result.violations] == [
        ("minRows", None, 300),
        ("requiredColumn", "region", 300),
        ("type", "calls", 2),
        ("maxMissingFraction", "tenure", 15),
        ("maxMissingFraction", "plan", 12),
        ("allowedCategories", "plan", teams),
        ("labelBalance", "churn", 30),
    ]
    assert f"report: {bench.folder}validation.json" in result.message
    assert result.dataset is not None and (result.dataset.rows, result.dataset.columns) == (300, 6)
    assert result.artifact is None and result.card is None
    report = json.loads(bench.store.get_bytes(bench.folder + "validation.json"))
    assert report["ok"] is False and len(report["violations"]) == 7
    assert bench.store.list(bench.folder) == [bench.folder + "validation.json"]  # no model, no card
    assert "dataset-loaded" in run.stages() and "fitted" not in run.stages()


def test_a_disallowed_estimator_is_refused_before_reading_data(bench: Bench) -> None:
    task = make_task(
        f"s3://{bench.minio.bucket}/datasets/never-read.csv", bench.folder, "sklearn.svm.LinearSVC", "y"
    )
    run = bench.run(task)
    assert run.code == EXIT_PERMANENT
    result = TrainingResult.model_validate(run.message)
    assert (result.outcome, result.reason) == ("Failed", "InvalidSpec")
    assert result.message.startswith(
        "spec.algorithm.estimator 'sklearn.svm.LinearSVC' is not allowed; choose one of:"
    )
    assert "HistGradientBoostingClassifier" in result.message
    assert "dataset-loaded" not in run.stages()


def _main(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, task_json: str | None
) -> tuple[int, dict[str, str]]:
    log = tmp_path / "termination.log"
    monkeypatch.setenv("KUBELOOP_TERMINATION_LOG", str(log))
    if task_json is None:
        monkeypatch.delenv("KUBELOOP_TASK", raising=False)
    else:
        monkeypatch.setenv("KUBELOOP_TASK", task_json)
    code = main()
    return code, json.loads(log.read_text())


def test_missing_and_unreadable_datasets_are_permanent(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = f"s3://{bench.minio.bucket}/datasets/absent.csv"
    code, message = _main(monkeypatch, tmp_path, make_task(absent, bench.folder, "Ridge", "y").to_json())
    assert code == EXIT_PERMANENT and message["reason"] == "DatasetMissing" and absent in message["message"]

    broken = bench.folder.replace("/runs/", "/datasets/") + "broken.parquet"
    bench.store.put_bytes(broken, b"not parquet at all")
    task = make_task(broken, bench.folder, "Ridge", "y", file_format="parquet")
    code, message = _main(monkeypatch, tmp_path, task.to_json())
    assert code == EXIT_PERMANENT and message["reason"] == "DatasetUnreadable"
    assert message["message"].startswith("the dataset is not valid parquet")


def test_a_missing_or_malformed_task_is_permanent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, message = _main(monkeypatch, tmp_path, None)
    assert (
        code == EXIT_PERMANENT
        and message["reason"] == "InvalidTask"
        and "KUBELOOP_TASK" in message["message"]
    )
    code, message = _main(monkeypatch, tmp_path, '{"mode": "sing"}')
    assert code == EXIT_PERMANENT and message["reason"] == "InvalidTask"


def test_parameters_the_estimator_does_not_take_are_refused(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri, _ = bench.upload(datasets.regression(60, seed=1), "csv")
    task = make_task(uri, bench.folder, "Ridge", "spend", algorithm={"params": {"max_depth": 3}})
    code, message = _main(monkeypatch, tmp_path, task.to_json())
    assert code == EXIT_PERMANENT and message["reason"] == "InvalidSpec"
    assert message["message"].startswith("Ridge has no parameter(s) max_depth")
    task = make_task(uri, bench.folder, "Ridge", "spend", algorithm={"params": {"alpha": -4}})
    code, message = _main(monkeypatch, tmp_path, task.to_json())
    assert code == EXIT_PERMANENT and message["reason"] == "InvalidSpec" and "alpha" in message["message"]
