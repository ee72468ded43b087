"""Search: trials by JOB_COMPLETION_INDEX (in-process through main(), and one real subprocess), then
the final train with the best params."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_score

from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.results import TrainingResult, TrialResult
from kubeloop.contracts.tasks import EXIT_OK, TrainerTask
from kubeloop.trainer.estimators import effective_params
from kubeloop.trainer.main import main
from kubeloop.trainer.train import make_pipeline
from tests.component.trainer.conftest import Bench, make_task
from tests.unit.trainer import datasets
from tests.unit.trainer.helpers import prepared_in_memory

RANDOM = {
    "strategy": "random",
    "trials": 6,
    "metric": "log_loss",
    "cvFolds": 3,
    "space": {
        "C": {"distribution": "loguniform", "low": 0.001, "high": 100},
        "class_weight": {"values": [None, "balanced"]},
    },
}
GRID = {
    "strategy": "grid",
    "trials": 4,
    "metric": "accuracy",
    "cvFolds": 3,
    "space": {"max_depth": {"values": [2, 6]}, "min_samples_leaf": {"values": [1, 20]}},
}


def in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, task: TrainerTask, index: int | None = None
               ) -> tuple[int, dict[str, Any]]:  # fmt: skip
    log = tmp_path / "termination.log"
    monkeypatch.setenv("KUBELOOP_TERMINATION_LOG", str(log))
    monkeypatch.setenv("KUBELOOP_TASK", task.to_json())
    if index is not None:
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
    return main(), json.loads(log.read_text())


def test_random_search_then_train_with_the_best_params(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri, _ = bench.upload(datasets.classification(300, seed=4), "parquet")
    trial = make_task(uri, bench.folder, "LogisticRegression", "churn", file_format="parquet", mode="trial",
                      algorithm={"search": RANDOM})  # fmt: skip

    trials = []
    for index in range(6):
        code, message = in_process(monkeypatch, tmp_path, trial, index)
        assert code == EXIT_OK
        trials.append(TrialResult.model_validate(message))
    assert [t.index for t in trials] == list(range(6)) and {t.outcome for t in trials} == {"Succeeded"}
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 6  # distinct points
    assert all(t.metric == "log_loss" and t.score is not None and t.score > 0 for t in trials)
    for t in trials:  # trials/<i>.json holds what the termination message said
        assert (
            TrialResult.model_validate_json(bench.store.get_bytes(f"{bench.folder}trials/{t.index}.json"))
            == t
        )

    # The same index in another process (a retried pod) evaluates the same point, to the same score.
    again = bench.run(trial, index=3)
    assert again.code == EXIT_OK, again.stdout + again.stderr
    assert TrialResult.model_validate(again.message) == trials[3]

    best = min(trials, key=lambda t: t.score or 0.0)  # log_loss: lower is better
    final = make_task(uri, bench.folder, "LogisticRegression", "churn", file_format="parquet",
                      algorithm={"search": RANDOM}, params=best.params)  # fmt: skip
    code, message = in_process(monkeypatch, tmp_path, final)
    assert code == EXIT_OK
    result = TrainingResult.model_validate(message)
    assert result.outcome == "Succeeded" and result.params.items() >= best.params.items()
    card = ModelCard.model_validate_json(bench.store.get_bytes(bench.folder + "model.json"))
    assert card.params == result.params and card.params["C"] == best.params["C"]


def test_grid_search_covers_the_grid_and_scores_on_the_training_split_only(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    frame = datasets.classification(300, seed=6)
    uri, _ = bench.upload(frame, "csv")
    trial = make_task(uri, bench.folder, "RandomForestClassifier", "churn", mode="trial",
                      algorithm={"params": {"n_estimators": 10}, "search": GRID})  # fmt: skip

    results = [TrialResult.model_validate(in_process(monkeypatch, tmp_path, trial, i)[1]) for i in range(4)]
    expected = [{"max_depth": d, "min_samples_leaf": m} for d, m in itertools.product([2, 6], [1, 20])]
    assert [r.params for r in results] == expected

    # The score is k-fold CV on the training split, computed independently here with scikit-learn.
    prepared = prepared_in_memory(frame, trial.spec)
    for result in results[:2]:
        params = effective_params(prepared.estimator, {"n_estimators": 10, **result.params}, prepared.seed)
        folds = StratifiedKFold(3, shuffle=True, random_state=prepared.seed)
        scores = cross_val_score(make_pipeline(prepared, params), prepared.x_train, prepared.y_train,
                                 scoring="accuracy", cv=folds)  # fmt: skip
        assert len(prepared.x_train) == 240
        assert result.score == pytest.approx(float(np.mean(scores)), abs=1e-12)

    # More trials than grid points: the extra index reports why, and the Job's other trials go on.
    code, message = in_process(monkeypatch, tmp_path, trial, 4)
    beyond = TrialResult.model_validate(message)
    assert code == EXIT_OK and (beyond.outcome, beyond.reason) == ("Failed", "BeyondGrid")
    assert "the grid has 4 points" in beyond.message


def test_a_point_that_cannot_be_fitted_is_a_failed_trial_not_a_failed_job(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri, _ = bench.upload(datasets.classification(120, seed=8), "csv")
    search = GRID | {"space": {"max_depth": {"values": [-1]}}, "trials": 1}
    trial = make_task(uri, bench.folder, "RandomForestClassifier", "churn", mode="trial",
                      algorithm={"params": {"n_estimators": 5}, "search": search})  # fmt: skip
    code, message = in_process(monkeypatch, tmp_path, trial, 0)
    failed = TrialResult.model_validate(message)
    assert code == EXIT_OK and (failed.outcome, failed.reason, failed.score) == (
        "Failed",
        "TrialFailed",
        None,
    )
    assert "max_depth" in failed.message and failed.params == {"max_depth": -1}


def test_trial_pods_report_invalid_data_as_a_trial_result(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri, _ = bench.upload(datasets.classification(120, seed=8), "csv")
    trial = make_task(uri, bench.folder, "LogisticRegression", "churn", mode="trial",
                      algorithm={"search": RANDOM}, dataset={"validation": {"minRows": 500}})  # fmt: skip
    code, message = in_process(monkeypatch, tmp_path, trial, 2)
    invalid = TrialResult.model_validate(message)
    assert code == 2 and (invalid.index, invalid.outcome, invalid.reason) == (
        2,
        "DataInvalid",
        "DataValidationFailed",
    )
    assert [(v.rule, v.count) for v in invalid.violations] == [("minRows", 120)]
