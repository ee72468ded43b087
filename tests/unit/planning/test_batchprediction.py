"""The BatchPrediction planner, one observed situation at a time: versions, runs, notifications, schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from kubeloop.api.v1alpha1 import BatchPredictionSpec
from kubeloop.contracts.batch import BatchTask, NotifyTask
from kubeloop.planning.batchprediction import (
    BatchObserved,
    BatchPlan,
    VersionState,
    active,
    cron_problems,
    plan_batch,
    resolve,
)
from kubeloop.planning.jobs import JobState, index_list
from kubeloop.planning.workloads import WorkloadSettings
from tests.unit.planning.test_core import example

NOW = datetime(2026, 1, 1, 2, 5, tzinfo=UTC)
SETTINGS = WorkloadSettings(
    "http://minio:9000", "kubeloop", "kubeloop-s3", "kubeloop/trainer:t", "kubeloop/server:t"
)
SHA = "9f" * 32
READY = VersionState(7, True, "Ready", "s3://kubeloop/imports/churn/model.onnx", SHA)


def batch(*, one_off: bool = False, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    resource = example("BatchPrediction")
    if one_off:
        for field in ("schedule", "timeZone"):
            del resource["spec"][field]
    resource["spec"].update(spec)
    resource["status"] = {"observedGeneration": 1, "phase": "Pending", "conditions": [], **(status or {})}
    return resource


def plan(resource: dict[str, Any], observed: BatchObserved) -> BatchPlan:
    return plan_batch(resource, BatchPredictionSpec.model_validate(resource["spec"]), observed, SETTINGS, NOW)


def shard(index: int, outcome: str = "Succeeded", **fields: Any) -> dict[str, Any]:
    reason = "Scored" if outcome == "Succeeded" else "InputInvalid"
    result = {"shard": index, "outcome": outcome, "reason": reason, "message": "ok", "rowsIn": 100,
              "rowsOut": 98, "rejects": 2, "version": 7, "sha256": SHA}  # fmt: skip
    return result | fields


def run_job(name: str = "churn-nightly-score", *, complete: bool = False, failed: bool = False,
            results: list[dict[str, Any]] | None = None, **fields: Any) -> JobState:  # fmt: skip
    fields.setdefault("completion_time", "2026-01-01T02:04:00Z" if complete or failed else None)
    return JobState(name, complete, failed, results=results or [], uid=f"uid-{name}",
                    labels={"kubeloop.io/batch-role": "score", "kubeloop.io/model-version": "7"},
                    created="2026-01-01T02:00:00Z", start_time="2026-01-01T02:00:00Z", **fields)  # fmt: skip


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def env_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


# --- the version ---------------------------------------------------------------------------------------

DEPLOYED = {"fromDeployment": "churn", "version": None}


@pytest.mark.parametrize(
    ("spec", "observed", "reason", "number"),
    [
        ({}, BatchObserved(VersionState(7, False)), "VersionMissing", None),
        ({}, BatchObserved(VersionState(7, True, "Validating")), "VersionNotValidated", None),
        ({}, BatchObserved(VersionState(7, True, "Failed")), "VersionRejected", None),
        ({}, BatchObserved(READY), "VersionResolved", 7),
        (DEPLOYED, BatchObserved(None, deployment_found=False), "DeploymentMissing", None),
        (DEPLOYED, BatchObserved(None), "NoStableVersion", None),
        (DEPLOYED, BatchObserved(VersionState(3, True, "Ready", "s3://b/m.onnx", SHA)), "VersionResolved", 3),
    ],
)
def test_version_resolution(
    spec: dict[str, Any], observed: BatchObserved, reason: str, number: int | None
) -> None:
    resource = batch(**spec)
    resource["spec"] = {k: v for k, v in resource["spec"].items() if v is not None}
    resolved, found, message = resolve(BatchPredictionSpec.model_validate(resource["spec"]), observed)
    assert found == reason and (resolved.number if resolved else None) == number
    if spec:
        assert "ModelDeployment churn" in message


@pytest.mark.parametrize(
    "schedule", ["0 2 * * *", "*/15 * * * *", "0 9 * * MON-FRI", "@daily", "0 0 1 JAN,JUL ?"]
)
def test_valid_schedules(schedule: str) -> None:
    assert cron_problems(schedule) == []


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [("60 * * * *", "minute '60'"), ("0 24 * * *", "hour '24'"), ("0 0 0 * *", "day of month '0'"),
     ("0 0 * 13 *", "month '13'"), ("*/0 * * * *", "minute '*/0'"),
     ("0 0 * * FUNDAY", "day of week 'FUNDAY'"), ("? * * * *", "minute '?'")],
)  # fmt: skip
def test_invalid_schedules_are_named(schedule: str, problem: str) -> None:
    (found,) = cron_problems(schedule)
    assert found.startswith(f"spec.schedule: {problem} is not valid")


def test_index_list_reads_the_job_status_form() -> None:
    assert index_list("1,3-5,9") == [1, 3, 4, 5, 9] and index_list("") == []


# --- one-off runs ----------------------------------------------------------------------------------------


def test_one_off_waits_for_a_validated_version() -> None:
    result = plan(batch(one_off=True), BatchObserved(VersionState(7, True, "Validating")))
    assert result.create == [] and result.status["phase"] == "Pending"
    assert condition(result.status, "VersionResolved")["reason"] == "VersionNotValidated"
    assert condition(result.status, "Succeeded")["status"] == "Unknown"


def test_one_off_with_a_rejected_version_fails_and_says_why() -> None:
    result = plan(batch(one_off=True), BatchObserved(VersionState(7, True, "Failed")))
    assert result.status["phase"] == "Failed" and result.create == []
    assert condition(result.status, "Succeeded")["reason"] == "VersionRejected"
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "Failed")]


def test_one_off_starts_an_indexed_job_one_index_per_shard() -> None:
    result = plan(batch(one_off=True, parallelism=2), BatchObserved(READY))
    (job,) = result.create
    spec = job["spec"]
    assert job["metadata"]["name"] == "churn-nightly-score"
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 2)
    assert (spec["backoffLimitPerIndex"], spec["maxFailedIndexes"], spec["activeDeadlineSeconds"]) == (
        1,
        0,
        7200,
    )
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailIndex" and rule["onExitCodes"]["values"] == [2]
    (container,) = spec["template"]["spec"]["containers"]
    assert (container["image"], container["command"], container["args"]) == (
        "kubeloop/server:t", ["python", "-m", "kubeloop.batch"], ["score"])  # fmt: skip
    env = env_of(job)
    task = BatchTask.model_validate_json(env["KUBELOOP_TASK"]["value"])
    assert (task.model.version, task.model.sha256, task.shards, task.chunk_rows) == (7, SHA, 4, 50_000)
    assert task.model.card_uri == "s3://kubeloop/imports/churn/model.json"
    assert env["KUBELOOP_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']")  # fmt: skip
    assert "secretKeyRef" in env["KUBELOOP_S3_ACCESS_KEY"]["valueFrom"]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "BatchPrediction"
    assert result.status["phase"] == "Running" and result.status["version"] == 7
    assert [e.reason for e in result.events] == ["Running"]


def test_one_off_running_shows_shard_progress_and_what_pods_wait_for() -> None:
    job = run_job(results=[shard(0)], waiting=["pod p-1: ImagePullBackOff: nope"], active=3)
    result = plan(batch(one_off=True, status={"phase": "Running"}), BatchObserved(READY, runs=[job]))
    assert result.create == [] and result.status["phase"] == "Running"
    last = result.status["lastRun"]
    assert last["phase"] == "Running" and last["message"].startswith("1 of 4 shard(s) done; waiting: pod p-1")
    assert condition(result.status, "Succeeded")["status"] == "Unknown"


def test_one_off_success_sums_the_shards_and_starts_the_notification() -> None:
    job = run_job(complete=True, results=[shard(i) for i in range(4)])
    result = plan(batch(one_off=True, status={"phase": "Running"}), BatchObserved(READY, runs=[job]))
    last = result.status["lastRun"]
    assert (last["phase"], last["rowsIn"], last["rowsOut"], last["rejects"], last["version"]) == (
        "Succeeded", 400, 392, 8, 7)  # fmt: skip
    assert last["outputUri"] == "s3://kubeloop/predictions/churn/churn-nightly-score/"
    assert last["durationSeconds"] == 240.0 and last["notification"]["phase"] == "Pending"
    assert result.status["phase"] == "Succeeded" and result.status["runs"] == 1
    assert [r["name"] for r in result.finished] == ["churn-nightly-score"]
    (notify,) = result.create
    assert notify["metadata"]["name"] == "churn-nightly-notify"
    owner = notify["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Job",
        "churn-nightly-score",
        "uid-churn-nightly-score",
    )
    env = env_of(notify)
    task = NotifyTask.model_validate_json(env["KUBELOOP_TASK"]["value"])
    assert task.notify and task.webhook_from_secret and task.email is not None
    assert (task.summary.rows_out, task.summary.sha256, task.summary.phase) == (392, SHA, "Succeeded")
    assert env["KUBELOOP_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "retention-hooks",
        "key": "churn-url",
    }
    smtp = {k: v["valueFrom"]["secretKeyRef"] for k, v in env.items() if k.startswith("KUBELOOP_SMTP_")}
    assert smtp["KUBELOOP_SMTP_HOST"] == {"name": "smtp-relay", "key": "host", "optional": False}
    assert smtp["KUBELOOP_SMTP_PASSWORD"] == {"name": "smtp-relay", "key": "password", "optional": True}
    assert "value" not in env["KUBELOOP_SMTP_PASSWORD"]  # the operator never holds the credentials
    assert condition(result.status, "Succeeded")["reason"] == "RunSucceeded"
    assert condition(result.status, "Notified")["status"] == "Unknown"
    assert active(result.status)  # the notification is still to come


def test_a_failed_shard_fails_the_run_and_is_named() -> None:
    failing = shard(
        2, "Failed", message="s3://in/b.csv lacks the column(s) contract", rowsIn=0, rowsOut=0, rejects=0
    )
    job = run_job(failed=True, results=[shard(0), shard(1), failing], failed_indexes="2",
                  reason="FailedIndexes", message="Job has failed indexes")  # fmt: skip
    result = plan(batch(one_off=True, status={"phase": "Running"}), BatchObserved(READY, runs=[job]))
    last = result.status["lastRun"]
    assert (last["phase"], last["failedShards"], last["rowsOut"]) == ("Failed", [2], 196)
    assert last["message"] == "shard 2 failed: InputInvalid: s3://in/b.csv lacks the column(s) contract"
    assert result.status["phase"] == "Failed"
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "Failed")]
    assert condition(result.status, "Succeeded")["reason"] == "RunFailed"
    task = NotifyTask.model_validate_json(env_of(result.create[0])["KUBELOOP_TASK"]["value"])
    assert task.summary.failed_shards == [2] and task.notify  # spec.notify.on has Failed too


def test_a_shard_that_died_without_a_result_is_still_named() -> None:
    job = run_job(failed=True, results=[shard(0)], failed_indexes="1,3", reason="FailedIndexes")
    last = plan(batch(one_off=True), BatchObserved(READY, runs=[job])).status["lastRun"]
    assert last["failedShards"] == [1, 3]
    assert last["message"].startswith("shard 1 failed without a result")


def test_notification_outcomes_are_recorded_once() -> None:
    job = run_job(complete=True, results=[shard(i) for i in range(4)])
    first = plan(batch(one_off=True, status={"phase": "Running"}), BatchObserved(READY, runs=[job]))
    sent = JobState("churn-nightly-notify", complete=True, results=[
        {"ok": True, "reason": "Sent", "message": "webhook: HTTP 200; email: sent to 1 recipient(s)",
         "webhook": "HTTP 200", "email": "sent to 1 recipient(s) via smtp:587"}])  # fmt: skip
    observed = BatchObserved(READY, runs=[job], notifications={"churn-nightly-score": sent})
    second = plan(batch(one_off=True, status=first.status), observed)
    notification = second.status["lastRun"]["notification"]
    assert (notification["phase"], notification["webhook"], notification["attempts"]) == (
        "Sent",
        "HTTP 200",
        1,
    )
    assert (
        second.create == [] and second.finished == [] and [r["name"] for r in second.notified] == [job.name]
    )
    assert [e.reason for e in second.events] == ["Notified"]
    assert condition(second.status, "Notified")["status"] == "True"
    assert not active(second.status)
    third = plan(batch(one_off=True, status=second.status), observed)
    assert third.status == second.status and third.events == [] and third.notified == []


def test_a_notification_that_failed_every_retry_is_reported() -> None:
    job = run_job(complete=True, results=[shard(i) for i in range(4)])
    refused = {"ok": False, "reason": "DeliveryFailed", "message": "webhook: HTTP 503 Service Unavailable"}
    notify = JobState(
        "churn-nightly-notify", failed=True, reason="BackoffLimitExceeded", results=[refused] * 3
    )
    status = {"phase": "Succeeded", "lastRun": {"name": job.name, "phase": "Succeeded", "notification": {
        "phase": "Pending"}}}  # fmt: skip
    result = plan(batch(one_off=True, status=status),
                  BatchObserved(READY, runs=[job], notifications={job.name: notify}))  # fmt: skip
    notification = result.status["lastRun"]["notification"]
    assert (notification["phase"], notification["attempts"]) == ("Failed", 3)
    assert (
        notification["message"] == "not delivered after 3 attempt(s): webhook: HTTP 503 Service Unavailable"
    )
    assert [(e.type, e.reason) for e in result.events] == [("Warning", "NotificationFailed")]
    assert condition(result.status, "Notified")["reason"] == "DeliveryFailed"


def test_a_one_off_runs_once_even_if_its_job_is_deleted() -> None:
    status = {"phase": "Succeeded", "lastRun": {"name": "churn-nightly-score", "phase": "Succeeded"}}
    assert plan(batch(one_off=True, status=status), BatchObserved(READY)).create == []


# --- scheduled runs ------------------------------------------------------------------------------------


def test_scheduled_applies_a_cron_job_carrying_the_scoring_job() -> None:
    result = plan(batch(), BatchObserved(READY))
    (cron,) = result.apply
    spec = cron["spec"]
    assert (cron["kind"], cron["metadata"]["name"]) == ("CronJob", "churn-nightly-score")
    assert (spec["schedule"], spec["timeZone"], spec["suspend"], spec["concurrencyPolicy"]) == (
        "0 2 * * *", "Europe/Paris", False, "Forbid")  # fmt: skip
    assert spec["jobTemplate"]["spec"]["completions"] == 4
    assert spec["jobTemplate"]["metadata"]["labels"]["kubeloop.io/batch-prediction"] == "churn-nightly"
    assert result.create == [] and result.status["phase"] == "Scheduled"
    assert [e.reason for e in result.events] == ["Scheduled"]


def test_cron_job_is_reapplied_only_when_its_template_changes() -> None:
    applied = plan(batch(), BatchObserved(READY)).apply[0]["metadata"]["annotations"][
        "kubeloop.io/template-hash"
    ]
    same = plan(batch(status={"phase": "Scheduled"}), BatchObserved(READY, cron_hash=applied))
    assert same.apply == [] and same.events == []
    newer = VersionState(8, True, "Ready", "s3://kubeloop/runs/x/model.onnx", "ab" * 32)
    moved = plan(batch(status={"phase": "Scheduled"}), BatchObserved(newer, cron_hash=applied))
    task = json.loads(env_of(moved.apply[0]["spec"]["jobTemplate"])["KUBELOOP_TASK"]["value"])
    assert task["model"]["version"] == 8 and moved.status["version"] == 8


def test_scheduled_runs_are_followed_without_phase_noise() -> None:
    status = {"phase": "Scheduled", "version": 7}
    running = run_job("churn-nightly-score-29433600", results=[shard(0)])
    started = plan(batch(status=status), BatchObserved(READY, runs=[running], cron_hash="h"))
    assert started.status["phase"] == "Running"
    assert [e.reason for e in started.events] == ["RunStarted"]
    done = run_job("churn-nightly-score-29433600", complete=True, results=[shard(i) for i in range(4)])
    ended = plan(batch(status=started.status), BatchObserved(READY, runs=[done], cron_hash="h"))
    assert ended.status["phase"] == "Scheduled"
    assert [e.reason for e in ended.events] == ["RunSucceeded"]
    assert ended.create[0]["metadata"]["name"] == "churn-nightly-notify-29433600"
    assert [r["name"] for r in ended.status["history"]] == ["churn-nightly-score-29433600"]


def test_history_keeps_the_newest_runs_up_to_the_limit() -> None:
    jobs = [run_job(f"churn-nightly-score-{n}", complete=True, results=[shard(0)],
                    completion_time=f"2026-01-0{n}T02:04:00Z") for n in (1, 2, 3)]  # fmt: skip
    result = plan(
        batch(historyLimit=2, status={"phase": "Scheduled"}), BatchObserved(READY, runs=jobs, cron_hash="h")
    )
    assert [r["name"] for r in result.status["history"]] == ["churn-nightly-score-3", "churn-nightly-score-2"]
    assert result.status["runs"] == 3 and result.status["lastRun"]["name"] == "churn-nightly-score-3"


def test_settled_runs_are_kept_as_recorded() -> None:
    recorded = {"name": "churn-nightly-score-1", "phase": "Succeeded", "rowsOut": 392,
                "notification": {"phase": "Sent"}}  # fmt: skip
    status = {"phase": "Scheduled", "history": [recorded], "lastRun": recorded, "runs": 1}
    pruned_results = run_job("churn-nightly-score-1", complete=True)  # results not read again
    result = plan(batch(status=status), BatchObserved(READY, runs=[pruned_results], cron_hash="h"))
    assert result.status["history"] == [recorded] and result.status["runs"] == 1 and result.create == []


def test_suspended_and_unresolvable_schedules() -> None:
    suspended = plan(batch(suspend=True, status={"phase": "Scheduled"}), BatchObserved(READY, cron_hash="x"))
    assert suspended.status["phase"] == "Suspended" and suspended.apply[0]["spec"]["suspend"] is True
    lost = plan(batch(status={"phase": "Scheduled"}), BatchObserved(VersionState(7, False), cron_hash="x"))
    assert lost.apply == [] and lost.status["phase"] == "Scheduled"  # runs go on with the version they had
    assert condition(lost.status, "VersionResolved")["status"] == "False"
    never = plan(batch(), BatchObserved(VersionState(7, True, "Validating")))
    assert never.apply == [] and never.status["phase"] == "Pending"
