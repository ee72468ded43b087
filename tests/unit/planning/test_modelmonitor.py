"""The ModelMonitor planner, one observed situation at a time: schedule, runs read in order,
verdicts, and retraining within its limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeloop.api.v1alpha1 import ModelMonitorSpec
from kubeloop.contracts.monitoring import MonitorSummary, MonitorTask, PerformanceSummary, ScoreSummary
from kubeloop.planning.conditions import find
from kubeloop.planning.jobs import JobState
from kubeloop.planning.modelmonitor import MonitorObserved, RunObserved, plan_monitor
from kubeloop.planning.modelmonitor_children import cron_schedule, retrain_name, run_now_job_name
from kubeloop.planning.workloads import WorkloadSettings
from tests.unit.planning.test_core import example

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SETTINGS = WorkloadSettings(
    "http://minio:9000",
    "kubeloop",
    "kubeloop-s3",
    "kubeloop/trainer:t",
    "kubeloop/server:t",
    monitor_image="kubeloop/monitor:t",
)
READY = MonitorObserved(
    deployment_found=True,
    model="churn",
    stable_version=3,
    model_folder="s3://kubeloop/runs/ns/churn-a/u1/",
    source_spec={"model": "churn", "dataset": {"uri": "s3://kubeloop/d.csv"}},
)


def monitor(
    annotations: dict[str, str] | None = None, **status: Any
) -> tuple[dict[str, Any], ModelMonitorSpec]:
    resource = example("ModelMonitor")
    resource["metadata"]["annotations"] = annotations or {}
    resource["status"] = {"observedGeneration": 1, "phase": "InsufficientData", "conditions": [], **status}
    return resource, ModelMonitorSpec.model_validate(resource["spec"])


def summary(
    phase: str,
    *,
    version: int = 3,
    drifted: tuple[str, ...] = (),
    degraded: bool = False,
    outcome: str = "Succeeded",
) -> dict[str, Any]:
    scores = [ScoreSummary(name=n, score=0.5, drifted=True) for n in drifted] + [
        ScoreSummary(name="other", score=0.01)
    ]
    performance = PerformanceSummary(
        metric="roc_auc", status="Measured", value=0.7, baseline=0.8, labeled=300, degraded=degraded
    )
    body = MonitorSummary.model_validate(
        {
            "outcome": outcome,
            "phase": phase,
            "reason": f"R{phase}",
            "message": f"{phase} message",
            "time": NOW,
            "version": version,
            "samples": 1200,
            "drift_score": 0.5 if drifted else 0.01,
            "features": scores,
            "drifted": list(drifted),
            "drifted_count": len(drifted),
            "performance": performance,
            "report_uri": "s3://kubeloop/monitors/ns/churn/t/report.html",
        }
    )
    return json.loads(body.to_json())  # type: ignore[no-any-return]


def run(
    name: str, minutes_ago: int, result: dict[str, Any] | None, *, complete: bool = True, failed: bool = False
) -> RunObserved:
    state = JobState(
        name=name,
        complete=complete,
        failed=failed,
        results=[result] if result else [],
        reason="BackoffLimitExceeded" if failed else "",
    )
    return RunObserved(NOW - timedelta(minutes=minutes_ago), state)


def observed(*runs: RunObserved, **changes: Any) -> MonitorObserved:
    fields = {**READY.__dict__, "runs": list(runs), **changes}
    return MonitorObserved(**fields)


def reasons(plan: Any) -> list[str]:
    return [e.reason for e in plan.events]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (30, "* * * * *"),
        (60, "* * * * *"),
        (90, "*/2 * * * *"),
        (900, "*/15 * * * *"),
    ],
)
def test_short_intervals_become_minute_steps(seconds: int, expected: str) -> None:
    assert cron_schedule(seconds, "churn") == expected


def test_long_intervals_start_at_a_minute_and_hour_taken_from_the_name() -> None:
    hourly, six, daily, weekly = (cron_schedule(s, "churn") for s in (3600, 6 * 3600, 86400, 7 * 86400))
    minute = hourly.split()[0]
    assert hourly == f"{minute} * * * *" and six == f"{minute} */6 * * *"
    hour = daily.split()[1]
    assert daily == f"{minute} {hour} * * *" and weekly == f"{minute} {hour} */7 * *"
    assert cron_schedule(3600, "other") != hourly or cron_schedule(3600, "third") != hourly


def test_without_a_stable_version_nothing_is_scheduled() -> None:
    resource, spec = monitor()
    for seen, reason in (
        (MonitorObserved(), "DeploymentNotFound"),
        (MonitorObserved(deployment_found=True, model="churn"), "NoStableVersion"),
        (observed(model_folder=None), "VersionNotFound"),
    ):
        plan = plan_monitor(resource, spec, seen, SETTINGS, NOW)
        assert plan.apply == [] and plan.create_jobs == []
        scheduled = find(plan.status["conditions"], "Scheduled")
        assert scheduled is not None and (scheduled["status"], scheduled["reason"]) == ("False", reason)


def test_the_cronjob_runs_the_monitor_image_on_the_stable_version_and_is_applied_only_when_changed() -> None:
    resource, spec = monitor()
    plan = plan_monitor(resource, spec, observed(), SETTINGS, NOW)
    (cron,) = plan.apply
    assert cron["kind"] == "CronJob" and cron["metadata"]["name"] == "churn-monitor"
    assert cron["metadata"]["ownerReferences"][0]["uid"] == "u"
    body = cron["spec"]
    assert (body["concurrencyPolicy"], body["timeZone"]) == ("Forbid", "Etc/UTC")
    assert body["schedule"].endswith(" * * * *") and body["schedule"].split()[0].isdigit()  # spec: 1h
    pod = body["jobTemplate"]["spec"]["template"]["spec"]
    (main,) = pod["containers"]
    assert main["image"] == "kubeloop/monitor:t" and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] and main["securityContext"]["readOnlyRootFilesystem"]
    env = {e["name"]: e for e in main["env"]}
    assert env["KUBELOOP_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "kubeloop-s3"
    task = MonitorTask.model_validate_json(env["KUBELOOP_TASK"]["value"])
    assert (task.deployment, task.model, task.version, task.window_seconds, task.min_samples) == (
        "churn",
        "churn",
        3,
        86400,
        1000,
    )
    assert task.model_folder == READY.model_folder and task.store_root == "s3://kubeloop/"
    assert task.performance is not None and task.performance.label_delay_seconds == 7 * 86400
    assert task.drift.features == spec.drift.features
    labels = body["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert labels["kubeloop.io/monitor-uid"] == "u" and labels["kubeloop.io/monitor"] == "churn"
    scheduled = find(plan.status["conditions"], "Scheduled")
    assert scheduled is not None and scheduled["status"] == "True"
    digest = cron["metadata"]["annotations"]["kubeloop.io/template-hash"]
    assert plan_monitor(resource, spec, observed(cronjob_hash=digest), SETTINGS, NOW).apply == []
    moved = plan_monitor(resource, spec, observed(cronjob_hash=digest, stable_version=4), SETTINGS, NOW)
    assert len(moved.apply) == 1  # a new stable version: a new task


def test_run_now_creates_one_job_per_annotation_value() -> None:
    resource, spec = monitor({"kubeloop.io/run-now": "2026-03-01T12:00"})
    plan = plan_monitor(resource, spec, observed(), SETTINGS, NOW)
    (job,) = plan.create_jobs
    assert job["metadata"]["name"] == run_now_job_name(resource, "2026-03-01T12:00")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "kubeloop/monitor:t"
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600 and plan.status["runNow"] == "2026-03-01T12:00"
    again, _ = monitor({"kubeloop.io/run-now": "2026-03-01T12:00"}, runNow="2026-03-01T12:00")
    assert plan_monitor(again, spec, observed(), SETTINGS, NOW).create_jobs == []


def test_a_healthy_run_becomes_the_status() -> None:
    resource, spec = monitor()
    plan = plan_monitor(
        resource, spec, observed(run("churn-monitor-1", 3, summary("Healthy"))), SETTINGS, NOW
    )
    status = plan.status
    assert status["phase"] == "Healthy" and status["consecutive"] == 0
    assert status["lastRun"]["job"] == "churn-monitor-1" and status["lastRun"]["samples"] == 1200
    assert status["lastRun"]["version"] == 3 and status["reportUri"].endswith("report.html")
    assert status["features"] == [{"name": "other", "score": 0.01, "drifted": False}]
    assert status["performance"]["labeledSamples"] == 300 and status["performance"]["degraded"] is False
    healthy = find(status["conditions"], "Healthy")
    assert healthy is not None and healthy["status"] == "True"
    assert reasons(plan) == ["Healthy"] and plan.retrain is None


def test_drift_on_consecutive_runs_creates_one_training_run() -> None:
    resource, spec = monitor()
    first = plan_monitor(
        resource, spec, observed(run("j1", 5, summary("Drifting", drifted=("tenure",)))), SETTINGS, NOW
    )
    assert first.status["consecutive"] == 1 and first.retrain is None
    assert reasons(first) == ["Drifting", "RetrainHeldBack"]
    drifting = find(first.status["conditions"], "Drifting")
    assert drifting is not None and drifting["status"] == "True"
    resource["status"] = first.status
    second = plan_monitor(
        resource, spec, observed(run("j2", 1, summary("Drifting", drifted=("tenure",)))), SETTINGS, NOW
    )
    retrain = second.retrain
    assert (
        retrain is not None and retrain["metadata"]["name"] == retrain_name(resource, 1) == "churn-retrain-1"
    )
    assert retrain["spec"]["dataset"]["uri"] == "s3://kubeloop/datasets/churn/latest.csv"  # the override
    assert retrain["metadata"]["labels"]["kubeloop.io/monitor"] == "churn"
    assert retrain["metadata"]["labels"]["kubeloop.io/retrain-reason"] == "DriftDetected"
    assert retrain["metadata"]["annotations"]["kubeloop.io/report"].endswith("report.html")
    assert "ownerReferences" not in retrain["metadata"]
    status = second.status
    assert (status["retrainCount"], status["lastRetrain"]["trainingRun"]["name"]) == (1, "churn-retrain-1")
    assert "RetrainTriggered" in reasons(second)


def test_two_runs_read_in_one_reconcile_start_at_most_one_retraining() -> None:
    resource, spec = monitor()
    bad = summary("Drifting", drifted=("tenure",))
    plan = plan_monitor(
        resource, spec, observed(run("j1", 9, bad), run("j2", 6, bad), run("j3", 3, bad)), SETTINGS, NOW
    )
    assert plan.retrain is not None and plan.status["retrainCount"] == 1
    assert plan.status["lastRun"]["job"] == "j3" and plan.status["consecutive"] == 3
    held = find(plan.status["conditions"], "Retraining")
    assert held is not None and held["reason"] == "TrainingRunCreated"


def retrained(minutes_ago: int, **status: Any) -> tuple[dict[str, Any], ModelMonitorSpec]:
    at = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    last_run = {"time": at, "version": 3, "created": at, "job": "j0"}
    return monitor(
        consecutive=5,
        retrainCount=1,
        recentRetrains=[at],
        phase="Drifting",
        lastRun=last_run,
        lastRetrain={"time": at, "trainingRun": {"name": "churn-retrain-1"}},
        **status,
    )


def test_cooldown_holds_back_a_second_retraining_and_says_so_once() -> None:
    resource, spec = retrained(60)  # cooldown 12h
    bad = summary("Drifting", drifted=("tenure",))
    plan = plan_monitor(
        resource,
        spec,
        observed(run("j1", 1, bad), retrain_exists=True, retrain_phase="Succeeded"),
        SETTINGS,
        NOW,
    )
    assert plan.retrain is None and plan.status["retrainCount"] == 1
    held = find(plan.status["conditions"], "Retraining")
    assert held is not None and (held["status"], held["reason"]) == ("False", "Cooldown")
    assert "11h" in held["message"] and reasons(plan) == ["RetrainHeldBack"]
    resource["status"] = plan.status
    later = plan_monitor(
        resource,
        spec,
        observed(run("j2", 0, bad), retrain_phase="Succeeded", retrain_exists=True),
        SETTINGS,
        NOW,
    )
    assert later.retrain is None and reasons(later) == []  # still held, no new Event


def test_no_second_retraining_while_one_trains_nor_beyond_the_daily_limit() -> None:
    resource, spec = retrained(13 * 60)  # cooldown over
    bad = summary("Degraded", degraded=True)
    busy = plan_monitor(
        resource,
        spec,
        observed(run("j1", 1, bad), retrain_exists=True, retrain_phase="Training"),
        SETTINGS,
        NOW,
    )
    assert busy.retrain is None
    running = find(busy.status["conditions"], "Retraining")
    assert running is not None and (running["status"], running["reason"]) == ("True", "TrainingRunRunning")
    spec.retrain.max_per_day = 1
    spec.retrain.cooldown = "1h"
    resource, _ = retrained(120)
    limited = plan_monitor(
        resource,
        spec,
        observed(run("j1", 1, bad), retrain_exists=True, retrain_phase="Succeeded"),
        SETTINGS,
        NOW,
    )
    held = find(limited.status["conditions"], "Retraining")
    assert limited.retrain is None and held is not None and held["reason"] == "DailyLimit"
    spec.retrain.max_per_day = 2
    allowed = plan_monitor(
        resource,
        spec,
        observed(run("j1", 1, bad), retrain_exists=True, retrain_phase="Succeeded"),
        SETTINGS,
        NOW,
    )
    assert allowed.retrain is not None and allowed.retrain["metadata"]["name"] == "churn-retrain-2"
    assert allowed.retrain["metadata"]["labels"]["kubeloop.io/retrain-reason"] == "PerformanceDropped"
    assert allowed.status["phase"] == "Degraded" and len(allowed.status["recentRetrains"]) == 2


def test_runs_are_read_in_creation_order_and_an_unfinished_one_waits() -> None:
    resource, spec = monitor()
    later = run("j2", 1, summary("Drifting", drifted=("a",)))
    plan = plan_monitor(resource, spec, observed(later, run("j1", 4, None, complete=False)), SETTINGS, NOW)
    assert "lastRun" not in plan.status and plan.status["phase"] == "InsufficientData"


def test_a_failed_run_is_reported_and_keeps_the_verdict() -> None:
    resource, spec = monitor(phase="Healthy")
    failed = summary("Healthy", outcome="Failed")
    failed["reason"], failed["message"] = "StoreUnavailable", "the store did not answer"
    plan = plan_monitor(
        resource, spec, observed(run("j1", 1, failed, complete=False, failed=True)), SETTINGS, NOW
    )
    assert plan.status["phase"] == "Healthy" and plan.status["lastRun"]["succeeded"] is False
    condition = find(plan.status["conditions"], "RunSucceeded")
    assert condition is not None and (condition["status"], condition["reason"]) == (
        "False",
        "StoreUnavailable",
    )
    assert reasons(plan) == ["RunFailed"] and plan.events[0].type == "Warning"
    crashed = plan_monitor(
        resource, spec, observed(run("j1", 1, None, complete=False, failed=True)), SETTINGS, NOW
    )
    condition = find(crashed.status["conditions"], "RunSucceeded")
    assert condition is not None and condition["reason"] == "BackoffLimitExceeded"


def test_too_little_data_neither_alarms_nor_resets_the_count() -> None:
    resource, spec = monitor(
        phase="Drifting", consecutive=1, lastRun={"time": "2026-03-01T11:00:00Z", "version": 3}
    )
    plan = plan_monitor(resource, spec, observed(run("j1", 1, summary("InsufficientData"))), SETTINGS, NOW)
    assert plan.status["phase"] == "InsufficientData" and plan.status["consecutive"] == 1
    drifting = find(plan.status["conditions"], "Drifting")
    assert drifting is not None and drifting["status"] == "Unknown" and plan.retrain is None


def test_a_new_stable_version_starts_the_count_again() -> None:
    resource, spec = monitor(
        phase="Drifting", consecutive=1, lastRun={"time": "2026-03-01T11:00:00Z", "version": 2}
    )
    plan = plan_monitor(
        resource, spec, observed(run("j1", 1, summary("Drifting", drifted=("a",)))), SETTINGS, NOW
    )
    assert plan.status["consecutive"] == 1 and plan.retrain is None


def test_a_missing_training_run_to_copy_is_a_warning_not_a_crash() -> None:
    resource, spec = monitor(consecutive=1, lastRun={"time": "2026-03-01T11:00:00Z", "version": 3})
    plan = plan_monitor(
        resource,
        spec,
        observed(run("j1", 1, summary("Drifting", drifted=("a",))), source_spec=None),
        SETTINGS,
        NOW,
    )
    held = find(plan.status["conditions"], "Retraining")
    assert plan.retrain is None and held is not None and held["reason"] == "TemplateNotFound"
    assert [e.type for e in plan.events if e.reason == "RetrainHeldBack"] == ["Warning"]


def test_long_names_stay_within_the_limits() -> None:
    resource, _ = monitor()
    resource["metadata"]["name"] = "m" * 200
    assert len(run_now_job_name(resource, "x")) <= 63 and len(retrain_name(resource, 12)) <= 253
