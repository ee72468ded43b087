"""TrainingRun: the core checks, then the run's state machine over its Jobs.

Pending -> [Searching: Indexed Job, one trial per index] -> Training: one Job -> Succeeded
any stage -> Failed (bad data: DataValid=False with the violations; a Job that gave up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from kubeloop.api.v1alpha1 import TrainingRunSpec
from kubeloop.contracts.results import TrainingResult, TrialResult
from kubeloop.planning.conditions import timestamp
from kubeloop.planning.core import Event, KindPolicy, Step, Summary
from kubeloop.planning.jobs import JobState, failure, last_result
from kubeloop.planning.trainingrun_children import (
    remaining_deadline,
    training_job,
)
from kubeloop.planning.workloads import WorkloadSettings

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "mse"}


def extra_checks(spec: BaseModel) -> list[str]:
    assert isinstance(spec, TrainingRunSpec)
    search = spec.algorithm.search
    if search is None:
        return []
    both = sorted(set(spec.algorithm.params) & set(search.space))
    # A parameter both fixed and searched is ambiguous: which one would win?
    return [
        f"spec.algorithm.params.{name}: also searched in spec.algorithm.search.space; keep one"
        for name in both
    ]


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    if status.get("startTime"):
        return None
    return Summary("Pending", "Succeeded", None, "Accepted", "spec accepted; training has not started")


POLICY = KindPolicy(TrainingRunSpec, summarize, "Failed", "Succeeded", extra_checks)


@dataclass(frozen=True)
class TrainingObserved:
    search: JobState | None
    train: JobState | None
    registered: str | None  # the ModelVersion this run created, found by its uid label


@dataclass
class TrainingPlan:
    status: Obj
    events: list[Event] = field(default_factory=list)
    create: list[Obj] = field(default_factory=list)  # Jobs to create (they do not exist yet)
    register: TrainingResult | None = None  # a succeeded result whose ModelVersion must be created


def _trials(job: JobState) -> list[TrialResult]:
    found: dict[int, TrialResult] = {}
    for raw in job.results:
        try:
            trial = TrialResult.model_validate(raw)
        except ValidationError:
            continue
        if trial.outcome == "Succeeded" or trial.index not in found:
            found[trial.index] = trial
    return [found[i] for i in sorted(found)]


def best_trial(trials: list[TrialResult]) -> TrialResult | None:
    scored = [t for t in trials if t.outcome == "Succeeded" and t.score is not None]
    if not scored:
        return None
    sign = -1 if scored[0].metric in LOWER_IS_BETTER else 1
    return max(scored, key=lambda t: (sign * float(t.score or 0), -t.index))


class _Run(Step):
    """One reconcile of one run: reads `observed`, fills `plan`."""

    plan: TrainingPlan

    def __init__(self, run: Obj, spec: TrainingRunSpec, observed: TrainingObserved,
                 settings: WorkloadSettings, now: datetime) -> None:  # fmt: skip
        super().__init__(run, TrainingPlan(dict(run.get("status") or {})), now)
        self.run, self.spec, self.observed, self.settings = run, spec, observed, settings

    def phase(self, phase: str, message: str = "") -> None:
        if self.status.get("phase") != phase:
            self.plan.events.append(
                Event("Warning" if phase == "Failed" else "Normal", phase, message or phase)
            )
        self.status["phase"] = phase
        if phase in TERMINAL and not self.status.get("completionTime"):
            self.status["completionTime"] = timestamp(self.now)

    def elapsed(self) -> float:
        started = self.status.get("startTime")
        if not started:
            return 0.0
        return (self.now - datetime.fromisoformat(started.replace("Z", "+00:00"))).total_seconds()

    def create_job(self, mode: str, params: Obj) -> None:
        self.status.setdefault("startTime", timestamp(self.now))
        deadline = remaining_deadline(self.spec, self.elapsed())
        self.plan.create.append(training_job(self.run, self.spec, self.settings, mode=mode,  # type: ignore[arg-type]
                                             params=params, deadline_seconds=deadline))  # fmt: skip

    def fail(self, reason: str, message: str) -> None:
        self.condition("Succeeded", False, reason, message)
        self.phase("Failed", message)

    def data_invalid(self, message: str, violations: list[Obj]) -> None:
        self.status["violations"] = violations[:50]
        self.condition("DataValid", False, "DataValidationFailed", message)
        self.fail("DataValidationFailed", message)

    def data_valid(self) -> None:
        self.condition("DataValid", True, "DataValidated", "the dataset passed every validation rule")

    def progress(self, reason: str, message: str, job: JobState | None) -> None:
        stuck = "; ".join(job.waiting) if job and job.waiting else ""
        self.condition("Succeeded", None, reason, f"{message}; waiting: {stuck}" if stuck else message)


def plan_training(run: Obj, spec: TrainingRunSpec, observed: TrainingObserved,
                  settings: WorkloadSettings, now: datetime) -> TrainingPlan:  # fmt: skip
    """The next step of a run whose spec is valid; nothing once it succeeded or failed."""
    step = _Run(run, spec, observed, settings, now)
    # Over only with a completionTime: a Failed set by a spec error (no time) resumes once fixed.
    if step.status.get("phase") in TERMINAL and step.status.get("completionTime"):
        if (
            step.status["phase"] == "Succeeded"
            and spec.register_version
            and not step.status.get("modelVersion")
        ):
            _finish(step)  # registered, then the operator stopped before recording it: pick it up
        return step.plan
    if observed.search is not None or observed.train is not None:
        # A Job exists, so the run started, even if the operator died before recording it.
        step.status.setdefault("startTime", timestamp(now))
    params: Obj | None = {}
    if spec.algorithm.search is not None:
        params = _search(step)
    if params is not None:
        _train(step, params)
    return step.plan


def _search(step: _Run) -> Obj | None:
    """Drive the search Job; the best trial's params once it is over, else None."""
    search, job = step.spec.algorithm.search, step.observed.search
    assert search is not None
    if job is None:
        step.create_job("trial", {})
        step.status["trials"] = {"completed": 0, "total": search.trials}
        step.phase("Searching", f"searching {search.trials} trials, {search.parallelism} at a time")
        step.progress("Searching", "search started", None)
        return None
    trials = _trials(job)
    best = best_trial(trials)
    step.status["trials"] = {"completed": len(trials), "total": search.trials}
    if best is not None:
        step.status["trials"]["best"] = {"index": best.index, "score": best.score, "params": best.params}
        step.data_valid()
    invalid = next((t for t in trials if t.outcome == "DataInvalid"), None)
    if invalid is not None:
        step.data_invalid(invalid.message, [])
        return None
    if job.failed and best is None:
        oom = failure(job, "", "") if job.oom_killed else None
        step.fail(*(oom or ("SearchFailed", job.message or f"every trial failed ({job.reason})")))
        return None
    if not (job.complete or job.failed) or best is None:
        step.phase("Searching", f"searching {search.trials} trials")
        step.progress("Searching", f"{len(trials)} of {search.trials} trials done", job)
        return None
    return dict(best.params)


def _train(step: _Run, params: Obj) -> None:
    job = step.observed.train
    if job is None:
        step.create_job("train", params)
        step.phase("Training", "training the final model")
        step.progress("Training", "final training started", None)
        return
    result = last_result(job, TrainingResult)
    if result is not None and result.outcome == "DataInvalid":
        step.data_invalid(
            result.message, [v.model_dump(by_alias=True, exclude_none=True) for v in result.violations]
        )
        return
    if result is not None and result.dataset is not None:
        step.status["dataset"] = {"sha256": result.dataset.sha256, "rows": result.dataset.rows,
                                  "columns": result.dataset.columns}  # fmt: skip
        step.data_valid()
    if job.complete and result is not None and result.outcome == "Succeeded":
        step.status["metrics"] = result.metrics
        if result.artifact is not None and result.card is not None:
            uri = result.card.rsplit("/", 1)[0] + "/model.onnx"
            step.status["artifact"] = {"uri": uri, "format": "onnx", "sha256": result.artifact.sha256,
                                       "size": result.artifact.size}  # fmt: skip
        _finish(step, result)
    elif job.failed:
        failed = failure(job, "TrainingFailed", "the training Job failed")
        step.fail(*((result.reason, result.message) if result else failed))
    else:
        step.phase("Training", "training the final model")
        step.progress("Training", "training the final model", job)


def _finish(step: _Run, result: TrainingResult | None = None) -> None:
    registered = step.observed.registered
    if step.spec.register_version and registered is None:
        if result is not None:
            step.plan.register = result
        return  # Succeeded only once the version exists: the controller creates it and comes back
    if registered:
        step.status["modelVersion"] = registered
    message = f"model registered as {registered}" if registered else "model trained (registration off)"
    step.condition("Succeeded", True, "Succeeded", message)
    step.phase("Succeeded", message)
