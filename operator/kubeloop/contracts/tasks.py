"""How the operator tells a workload what to do: one JSON document in an environment variable.

TASK_ENV holds a TrainerTask; the pod template sets it, so `kubectl get job -o yaml` shows exactly
what a pod was asked to do. Store credentials come separately, from the Secret.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from kubeloop.contracts.model import Wire

TASK_ENV = "KUBELOOP_TASK"
# Where a Job's main container writes its compact result; tests outside a pod point it elsewhere.
TERMINATION_LOG_ENV = "KUBELOOP_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
RESULT_LIMIT = 4096  # bytes the kubelet keeps of a termination message


class TrainerTask(Wire):
    """One trainer pod's work.

    mode `trial`: evaluate one point of the search space (the index comes from the Indexed Job's
    JOB_COMPLETION_INDEX), write trials/<index>.json; mode `train`: fit on the training split with
    `params` (the best trial's, or the spec's), evaluate, export, write the artifacts.
    """

    mode: Literal["train", "trial"]
    spec: dict[str, Any]  # the TrainingRun spec, as the API server stored it (defaults applied)
    output: str  # store folder of the run, e.g. s3://kubeloop/runs/<ns>/<run>/<uid>/
    training_run: str  # <namespace>/<name>, for lineage
    training_run_uid: str
    params: dict[str, Any] = Field(default_factory=dict)  # overrides spec.algorithm.params (best trial)
    image: str | None = None
    parent_version: str | None = None

    @classmethod
    def from_env(cls) -> TrainerTask:
        raw = os.environ.get(TASK_ENV)
        if not raw:
            raise ValueError(f"{TASK_ENV} is not set: the operator passes the task as JSON in it")
        return cls.model_validate_json(raw)


def termination_log_path() -> str:
    return os.environ.get(TERMINATION_LOG_ENV, DEFAULT_TERMINATION_LOG)


# Exit codes of workload containers: the Jobs' podFailurePolicy fails the Job at once on a
# permanent failure (bad data, refused spec, tampered artifact) and retries transient ones.
EXIT_OK, EXIT_TRANSIENT, EXIT_PERMANENT = 0, 1, 2
