"""Entry point: run the task, then leave a compact result in the termination message and exit with
a code the Job understands: 0 done (a Failed trial included), 1 transient (retry), 2 permanent."""

from __future__ import annotations

import time
import traceback
from typing import Any

from pydantic import ValidationError

from kubeloop.contracts.model import Wire
from kubeloop.contracts.results import TrainingResult, TrialResult, write_result
from kubeloop.contracts.tasks import EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT, TrainerTask
from kubeloop.store.client import Store, StoreUnavailable
from kubeloop.trainer import logs
from kubeloop.trainer.errors import TrainerFailure, store_unavailable
from kubeloop.trainer.train import run_train
from kubeloop.trainer.trial import run_trial, trial_index


def open_store(task: TrainerTask) -> Store:
    try:
        store = Store.from_env()
    except ValueError as error:
        raise TrainerFailure("StoreNotConfigured", str(error)) from error
    dataset = str((task.spec.get("dataset") or {}).get("uri", ""))
    if store.settings is None and (task.output.startswith("s3://") or dataset.startswith("s3://")):
        raise TrainerFailure("StoreNotConfigured", "s3:// locations but KUBELOOP_S3_ENDPOINT is not set")
    return store


def _search_metric(spec: dict[str, Any]) -> str:
    search = (spec.get("algorithm") or {}).get("search") or {}
    return str(search.get("metric") or "")


def failure_result(task: TrainerTask | None, index: int | None, failure: TrainerFailure) -> Wire:
    """A TrialResult from trial pods (the controller reads those), a TrainingResult otherwise."""
    if task is not None and task.mode == "trial":
        return TrialResult(
            index=-1 if index is None else index,
            params={},
            metric=_search_metric(task.spec),
            outcome=failure.outcome,
            reason=failure.reason,
            message=failure.message,
            violations=failure.violations,
        )
    return TrainingResult(outcome=failure.outcome, reason=failure.reason, message=failure.message,
                          violations=failure.violations, dataset=failure.dataset)  # fmt: skip


def execute(task: TrainerTask) -> tuple[Wire, int]:
    index: int | None = None
    try:
        store = open_store(task)
        if task.mode == "trial":
            index = trial_index()
            return run_trial(task, store, index), EXIT_OK
        return run_train(task, store), EXIT_OK
    except TrainerFailure as failure:
        return failure_result(task, index, failure), failure.exit_code
    except StoreUnavailable as error:
        down = store_unavailable(f"the artifact store is unavailable: {error}")
        return failure_result(task, index, down), down.exit_code
    except Exception as error:  # a bug or a fault of the node: the Job's backoffLimit may retry
        logs.warning("crashed", f"{type(error).__name__}: {error}", traceback=traceback.format_exc())
        crash = TrainerFailure("InternalError", f"{type(error).__name__}: {error}", exit_code=EXIT_TRANSIENT)
        return failure_result(task, index, crash), crash.exit_code


def read_task() -> TrainerTask | TrainerFailure:
    try:
        return TrainerTask.from_env()
    except (ValueError, ValidationError) as error:
        return TrainerFailure("InvalidTask", f"the trainer task is invalid: {error}"[:2000])


def main() -> int:
    logs.configure()
    started = time.perf_counter()
    task = read_task()
    if isinstance(task, TrainerFailure):
        result, code = failure_result(None, None, task), EXIT_PERMANENT
    else:
        logs.event("started", mode=task.mode, training_run=task.training_run, output=task.output)
        result, code = execute(task)
    try:
        write_result(result)
    except OSError as error:  # outside a pod, without KUBELOOP_TERMINATION_LOG: still report in the log
        logs.warning("result", f"cannot write the termination message: {error}")
    summary = result.model_dump(include={"outcome", "reason", "message"})
    logs.event("finished", exit_code=code, seconds=round(time.perf_counter() - started, 3), **summary)
    return code
