"""Mode `train`: fit on the training split, evaluate on the test split, export, write the artifacts.

Files are written in this order, model.json last: its presence means the set is complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

import kubeloop
from kubeloop.contracts.model import CARD_FORMAT, Golden, Lineage, ModelCard, StoredFile, Task
from kubeloop.contracts.profile import Profile
from kubeloop.contracts.results import TrainingResult
from kubeloop.contracts.tasks import TrainerTask
from kubeloop.store.client import Store
from kubeloop.store.layout import CARD_FILE, MODEL_FILE, PROFILE_FILE, REPORT_FILE
from kubeloop.trainer import export, logs
from kubeloop.trainer.artifacts import RunFolder
from kubeloop.trainer.errors import TrainerFailure, invalid_spec
from kubeloop.trainer.estimators import RECIPES, build, effective_params
from kubeloop.trainer.importance import importances
from kubeloop.trainer.metrics import evaluate, requested
from kubeloop.trainer.pipeline import build_pipeline
from kubeloop.trainer.prepare import VALIDATION_FILE, Prepared, prepare
from kubeloop.trainer.profile import build_profile
from kubeloop.trainer.report import ReportInput, render

T = TypeVar("T")


class Stopwatch:
    """Seconds per stage, logged as they end and kept for the report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, action: Callable[[], T], **fields: Any) -> T:
        started = time.perf_counter()
        value = action()
        self.seconds[stage] = round(time.perf_counter() - started, 3)
        logs.event(stage, seconds=self.seconds[stage], **fields)
        return value


def fit(pipeline: Pipeline, prepared: Prepared) -> Pipeline:
    """Fitted on the training split; a bad parameter value is the spec's fault (permanent)."""
    try:
        return pipeline.fit(prepared.x_train, prepared.y_train)
    except InvalidParameterError as error:
        raise invalid_spec(f"{prepared.estimator.value}: {error}") from error
    except (ValueError, TypeError) as error:
        raise TrainerFailure(
            "TrainingFailed", f"fitting {prepared.estimator.value} failed: {error}"
        ) from error


def make_pipeline(prepared: Prepared, params: dict[str, Any]) -> Pipeline:
    recipe = RECIPES[prepared.estimator]
    return build_pipeline(prepared.columns, build(prepared.estimator, params), recipe.scaled)


def lineage(task: TrainerTask, prepared: Prepared) -> Lineage:
    return Lineage(
        training_run=task.training_run,
        training_run_uid=task.training_run_uid,
        dataset=prepared.dataset.ref,
        image=task.image,
        code_version=kubeloop.__version__,
        parent_version=task.parent_version,
    )


@dataclass(frozen=True)
class Trained:
    """Everything computed in memory before the first write."""

    model: Pipeline
    params: dict[str, Any]
    scores: dict[str, float]
    importances: dict[str, float]
    onnx: bytes
    fidelity: export.Fidelity
    golden: Golden
    profile: Profile


def train_and_export(prepared: Prepared, overrides: dict[str, Any], clock: Stopwatch) -> Trained:
    spec, regression, x_test, y_test = prepared.spec, prepared.regression, prepared.x_test, prepared.y_test
    params = effective_params(prepared.estimator, {**spec.algorithm.params, **overrides}, prepared.seed)
    model = clock.run("fitted", lambda: fit(make_pipeline(prepared, params), prepared),
                      rows=len(prepared.x_train), estimator=prepared.estimator.value)  # fmt: skip
    wanted = requested(spec.metrics, regression)
    scores = clock.run("evaluated", lambda: evaluate(model, wanted, x_test, y_test))
    onnx = clock.run("exported", lambda: export.convert(model, prepared.columns, regression, spec.model))
    hint = RECIPES[prepared.estimator].export_hint
    fidelity = clock.run("export-checked", lambda: export.check(
        model, onnx, x_test, prepared.columns, regression=regression, hint=hint))  # fmt: skip
    logs.event("export-fidelity", **asdict(fidelity))
    classes = [] if regression else list(np.asarray(model.classes_).tolist())
    served = export.OnnxPredictor(onnx, prepared.columns, classes)
    ranked = clock.run("importances", lambda: importances(served, x_test, y_test, regression, prepared.seed))
    profile = clock.run("profiled", lambda: profile_of(prepared, served.predict(x_test)))
    golden = export.golden(onnx, x_test, prepared.columns, regression)
    return Trained(model, params, scores, ranked, onnx, fidelity, golden, profile)


def profile_of(prepared: Prepared, predictions: np.ndarray) -> Profile:
    return build_profile(prepared.columns, raw=prepared.dataset.frame, train=prepared.x_train,
                         predictions=predictions, task=task_of(prepared), seed=prepared.seed)  # fmt: skip


def task_of(prepared: Prepared) -> Task:
    return "regression" if prepared.regression else "classification"


def model_card(
    task: TrainerTask, prepared: Prepared, trained: Trained, files: dict[str, StoredFile]
) -> ModelCard:
    classes = [] if prepared.regression else list(np.asarray(trained.model.classes_).tolist())
    return ModelCard(
        format=CARD_FORMAT,
        model=prepared.spec.model,
        estimator=prepared.estimator.value,
        signature=export.signature(prepared.columns, prepared.regression, classes),
        metrics=trained.scores,
        params=trained.params,
        lineage=lineage(task, prepared),
        golden=trained.golden,
        importances=trained.importances,
        files=files,
    )


def write_artifacts(
    task: TrainerTask, prepared: Prepared, trained: Trained, folder: RunFolder, seconds: dict[str, float]
) -> StoredFile:
    """The run's files, model.json last; returns model.onnx's digest and size."""
    folder.put_text(VALIDATION_FILE, prepared.validation.to_json())
    artifact = folder.put(MODEL_FILE, trained.onnx)
    folder.put_text(PROFILE_FILE, trained.profile.to_json())
    report = ReportInput(model=prepared.spec.model, training_run=task.training_run,
                         estimator=prepared.estimator.value, dataset=prepared.dataset.ref,
                         validation=prepared.validation, metrics=trained.scores, params=trained.params,
                         importances=trained.importances, fidelity=trained.fidelity,
                         files=dict(folder.written), seconds=seconds)  # fmt: skip
    folder.put_text(REPORT_FILE, render(report))
    folder.put_text(CARD_FILE, model_card(task, prepared, trained, dict(folder.written)).to_json())
    return artifact


def run_train(task: TrainerTask, store: Store) -> TrainingResult:
    folder, clock = RunFolder(store, task.output), Stopwatch()
    prepared = prepare(task.spec, store, folder)
    trained = train_and_export(prepared, task.params, clock)
    artifact = write_artifacts(task, prepared, trained, folder, clock.seconds)
    fidelity = trained.fidelity
    return TrainingResult(
        outcome="Succeeded",
        reason="Trained",
        message=f"{prepared.estimator.value} trained on {len(prepared.x_train)} rows; the ONNX export "
        f"reproduces scikit-learn on {fidelity.rows} test rows (max diff {fidelity.max_abs_diff:.2g})",
        dataset=prepared.dataset.ref,
        metrics=trained.scores,
        params=trained.params,
        artifact=artifact,
        card=folder.location(CARD_FILE),
    )
