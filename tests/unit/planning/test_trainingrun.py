"""The TrainingRun state machine, one observed situation at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeloop.api.v1alpha1 import TrainingRunSpec
from kubeloop.contracts.results import TrialResult
from kubeloop.planning.jobs import JobState
from kubeloop.planning.trainingrun import TrainingObserved, best_trial, plan_training
from kubeloop.planning.workloads import WorkloadSettings
from tests.unit.planning.test_core import example

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = WorkloadSettings(
    "http://minio:9000", "kubeloop", "kubeloop-s3", "kubeloop/trainer:t", "kubeloop/server:t"
)


def run(search: bool = True, **status: Any) -> tuple[dict[str, Any], TrainingRunSpec]:
    resource = example("TrainingRun")
    if not search:
        del resource["spec"]["algorithm"]["search"]
    resource["status"] = {"observedGeneration": 1, "phase": "Pending", "conditions": [], **status}
    return resource, TrainingRunSpec.model_validate(resource["spec"])


def trial(index: int, score: float | None, outcome: str = "Succeeded") -> dict[str, Any]:
    return {
        "index": index,
        "params": {"learning_rate": 0.01 * (index + 1)},
        "score": score,
        "metric": "roc_auc",
        "outcome": outcome,
    }


def trained(outcome: str = "Succeeded") -> dict[str, Any]:
    return {
        "outcome": outcome,
        "reason": outcome,
        "message": "done",
        "dataset": {"uri": "s3://b/d.csv", "sha256": "a" * 64, "rows": 10, "columns": 3},
        "metrics": {"roc_auc": 0.9},
        "params": {"learning_rate": 0.02},
        "artifact": {"sha256": "b" * 64, "size": 100},
        "card": "s3://b/runs/ns/r/u/model.json",
    }


def test_first_step_creates_the_indexed_search_job() -> None:
    resource, spec = run()
    plan = plan_training(resource, spec, TrainingObserved(None, None, None), SETTINGS, NOW)
    (job,) = plan.create
    assert job["metadata"]["name"] == "churn-2024-06-01-search"
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == (
        "Indexed",
        24,
        4,
    )
    pod = job["spec"]["template"]["spec"]
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
    )
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["KUBELOOP_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "kubeloop-s3",
        "key": "secretKey",
    }
    assert '"mode":"trial"' in env["KUBELOOP_TASK"]["value"]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "TrainingRun"
    assert plan.status["phase"] == "Searching" and plan.status["startTime"] == "2026-01-01T00:00:00Z"
    assert [e.reason for e in plan.events] == ["Searching"]


def test_search_progress_then_the_train_job_with_the_best_params() -> None:
    resource, spec = run(startTime="2026-01-01T00:00:00Z", phase="Searching")
    running = JobState("s", results=[trial(0, 0.7), trial(1, 0.9)])
    plan = plan_training(resource, spec, TrainingObserved(running, None, None), SETTINGS, NOW)
    assert plan.create == [] and plan.status["trials"]["completed"] == 2
    assert plan.status["trials"]["best"]["index"] == 1
    done = JobState("s", complete=True, results=[trial(i, 0.5 + i / 100) for i in range(24)])
    plan = plan_training(
        resource, spec, TrainingObserved(done, None, None), SETTINGS, NOW + timedelta(minutes=30)
    )
    (job,) = plan.create
    assert job["metadata"]["name"] == "churn-2024-06-01-train"
    assert (
        '"params":{"learning_rate":0.24'
        in job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
    )
    assert job["spec"]["activeDeadlineSeconds"] == 2 * 3600 - 30 * 60  # what is left of the run's 2h
    assert plan.status["phase"] == "Training"


def test_lower_is_better_metrics_pick_the_smallest() -> None:
    trials = [
        TrialResult.model_validate({**trial(i, s), "metric": "log_loss"})
        for i, s in enumerate([0.4, 0.2, 0.3])
    ]
    best = best_trial(trials)
    assert best is not None and best.index == 1


def test_success_asks_for_registration_then_completes_with_the_version() -> None:
    resource, spec = run(search=False, startTime="2026-01-01T00:00:00Z", phase="Training")
    train = JobState("t", complete=True, results=[trained()])
    plan = plan_training(resource, spec, TrainingObserved(None, train, None), SETTINGS, NOW)
    assert plan.register is not None and plan.status["phase"] == "Training"
    plan = plan_training(resource, spec, TrainingObserved(None, train, "churn-v3"), SETTINGS, NOW)
    assert plan.register is None and plan.status["phase"] == "Succeeded"
    assert plan.status["modelVersion"] == "churn-v3" and plan.status["completionTime"]
    assert plan.status["artifact"]["uri"] == "s3://b/runs/ns/r/u/model.onnx"


def test_bad_data_fails_with_violations_and_no_registration() -> None:
    resource, spec = run(search=False, startTime="2026-01-01T00:00:00Z", phase="Training")
    bad = {
        **trained("DataInvalid"),
        "reason": "DataValidationFailed",
        "message": "2 rules broken",
        "violations": [{"rule": "minRows", "count": 0, "message": "10 < 5000"}],
    }
    plan = plan_training(
        resource, spec, TrainingObserved(None, JobState("t", failed=True, results=[bad]), None), SETTINGS, NOW
    )
    assert plan.status["phase"] == "Failed" and plan.register is None
    assert plan.status["violations"][0]["rule"] == "minRows"
    types = {c["type"]: c["status"] for c in plan.status["conditions"]}
    assert types == {"DataValid": "False", "Succeeded": "False"}


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        (
            JobState(
                "t", failed=True, reason="DeadlineExceeded", message="Job was active longer than specified"
            ),
            "DeadlineExceeded",
        ),
        (
            JobState(
                "t",
                failed=True,
                reason="BackoffLimitExceeded",
                results=[
                    {
                        **trained("Failed"),
                        "reason": "StoreUnavailable",
                        "message": "put s3://b/x: the store did not answer",
                    }
                ],
            ),
            "StoreUnavailable",
        ),
        (
            JobState(
                "t",
                failed=True,
                reason="BackoffLimitExceeded",
                oom_killed=["pod t-abc: container trainer (memory limit 64Mi)"],
            ),
            "OOMKilled",
        ),
    ],
)
def test_failed_jobs_end_the_run_with_the_reason(job: JobState, reason: str) -> None:
    resource, spec = run(search=False, startTime="2026-01-01T00:00:00Z", phase="Training")
    plan = plan_training(resource, spec, TrainingObserved(None, job, None), SETTINGS, NOW)
    assert plan.status["phase"] == "Failed"
    assert next(c for c in plan.status["conditions"] if c["type"] == "Succeeded")["reason"] == reason


def test_an_out_of_memory_kill_names_the_pod_and_its_limit() -> None:
    resource, spec = run(search=False, startTime="2026-01-01T00:00:00Z", phase="Training")
    killed = JobState("t", failed=True, reason="BackoffLimitExceeded",
                      oom_killed=["pod t-abc: container trainer (memory limit 64Mi)"])  # fmt: skip
    plan = plan_training(resource, spec, TrainingObserved(None, killed, None), SETTINGS, NOW)
    succeeded = next(c for c in plan.status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["message"] == (
        "out of memory: pod t-abc: container trainer (memory limit 64Mi); raise the memory limit"
    )


def test_pods_that_cannot_start_are_shown_while_waiting() -> None:
    resource, spec = run(search=False, startTime="2026-01-01T00:00:00Z", phase="Training")
    stuck = JobState("t", waiting=['pod t-1: CreateContainerConfigError: secret "kubeloop-s3" not found'])
    plan = plan_training(resource, spec, TrainingObserved(None, stuck, None), SETTINGS, NOW)
    message = next(c for c in plan.status["conditions"] if c["type"] == "Succeeded")["message"]
    assert 'secret "kubeloop-s3" not found' in message


def test_a_finished_run_stays_finished() -> None:
    resource, spec = run(
        search=False,
        startTime="2026-01-01T00:00:00Z",
        phase="Succeeded",
        completionTime="2026-01-01T00:10:00Z",
        modelVersion="churn-v1",
    )
    plan = plan_training(resource, spec, TrainingObserved(None, None, "churn-v1"), SETTINGS, NOW)
    assert plan.create == [] and plan.events == [] and plan.status == resource["status"]


def test_jobs_left_by_a_crashed_operator_start_the_clock() -> None:
    resource, spec = run()  # the Job was created, then the operator died before writing status
    plan = plan_training(resource, spec, TrainingObserved(JobState("s"), None, None), SETTINGS, NOW)
    assert plan.create == [] and plan.status["startTime"] == "2026-01-01T00:00:00Z"
    assert plan.status["phase"] == "Searching"
