"""What a ModelMonitor creates: its CronJob, one-off run Jobs, and retraining TrainingRuns."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from kubeloop import API_GROUP, API_VERSION
from kubeloop.api.v1alpha1 import ModelMonitorSpec
from kubeloop.api.v1alpha1.common import parse_duration
from kubeloop.contracts.monitoring import DriftRule, MonitorTask, PerformanceRule
from kubeloop.contracts.tasks import EXIT_PERMANENT, TASK_ENV
from kubeloop.planning.workloads import WorkloadSettings, container, labels_for, owned, pod_spec, store_env

Obj = dict[str, Any]
MONITOR_LABEL, MONITOR_UID_LABEL = "kubeloop.io/monitor", "kubeloop.io/monitor-uid"
REASON_LABEL = "kubeloop.io/retrain-reason"
REPORT_ANNOTATION, TEMPLATE_HASH_ANNOTATION = "kubeloop.io/report", "kubeloop.io/template-hash"
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}
HISTORY = 3  # finished Jobs the CronJob keeps: the operator reads each within seconds
RUN_NOW_TTL = 3600  # one-off Jobs go away an hour after they finish, once their result is read


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def bounded_name(base: str, suffix: str, limit: int) -> str:
    """`base + suffix` within `limit` characters; a long base is cut and keeps a digest of itself."""
    if len(base) + len(suffix) <= limit:
        return base + suffix
    return base[: limit - len(suffix) - 9].rstrip("-.") + "-" + _digest(base) + suffix


def label_value(text: str) -> str:
    return bounded_name(text, "", 63)


def cronjob_name(monitor: Obj) -> str:
    return bounded_name(monitor["metadata"]["name"], "-monitor", 52)  # Job names add 11 characters


def run_now_job_name(monitor: Obj, token: str) -> str:
    return bounded_name(monitor["metadata"]["name"], f"-now-{_digest(token)}", 63)


def retrain_name(monitor: Obj, number: int) -> str:
    return bounded_name(monitor["metadata"]["name"], f"-retrain-{number}", 253)


def cron_schedule(seconds: int, name: str) -> str:
    """A cron line for `every <seconds>`: whole minutes (at least 1, the CronJob granularity), hours
    at a minute, or days at a time, picked from the monitor's name so monitors do not all start
    together. Steps that do not divide the hour (or day) restart at its top, as cron does."""
    minutes = max(1, round(seconds / 60))
    spread = int(_digest(name, 12), 16)
    if minutes < 60:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, minute = max(1, round(minutes / 60)), spread % 60
    if hours < 24:
        return f"{minute} * * * *" if hours == 1 else f"{minute} */{hours} * * *"
    days, hour = max(1, round(hours / 24)), (spread // 60) % 24
    return f"{minute} {hour} * * *" if days == 1 else f"{minute} {hour} */{days} * *"


def monitor_task(
    monitor: Obj,
    spec: ModelMonitorSpec,
    *,
    model: str,
    version: int,
    model_folder: str,
    settings: WorkloadSettings,
) -> MonitorTask:
    drift = spec.drift
    performance = spec.performance
    return MonitorTask(
        namespace=monitor["metadata"]["namespace"],
        monitor=monitor["metadata"]["name"],
        deployment=spec.deployment,
        model=model,
        version=version,
        model_folder=model_folder,
        store_root=f"s3://{settings.s3_bucket}/",
        window_seconds=parse_duration(spec.window),
        min_samples=spec.min_samples,
        drift=DriftRule(
            method=drift.method.value,
            threshold=drift.threshold,
            features=list(drift.features),
            max_missing_rate_change=drift.max_missing_rate_change,
            categorical_threshold=drift.categorical_threshold,
        ),
        performance=PerformanceRule(
            metric=performance.metric.value,
            max_drop=performance.max_drop,
            label_delay_seconds=parse_duration(performance.label_delay),
            min_labeled=performance.min_labeled,
        )
        if performance
        else None,
    )


def monitor_labels(monitor: Obj) -> dict[str, str]:
    meta = monitor["metadata"]
    return labels_for(
        "monitor",
        label_value(meta["name"]),
        {MONITOR_LABEL: label_value(meta["name"]), MONITOR_UID_LABEL: meta["uid"]},
    )


def job_spec(monitor: Obj, task: MonitorTask, settings: WorkloadSettings, deadline: int) -> Obj:
    env = [{"name": TASK_ENV, "value": task.to_json()}, *store_env(settings)]
    resources = copy.deepcopy(RESOURCES)
    main = container(
        "monitor", settings.monitor_image, env, resources=resources, pull_policy=settings.pull_policy
    )
    return {
        "backoffLimit": 2,  # a store hiccup (exit 1) is retried; a missing profile (exit 2) is not
        "activeDeadlineSeconds": deadline,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "monitor", "operator": "In", "values": [EXIT_PERMANENT]},
                },
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {"labels": monitor_labels(monitor)},
            "spec": pod_spec([main], restart_policy="Never"),
        },
    }


def cronjob(monitor: Obj, spec: ModelMonitorSpec, task: MonitorTask, settings: WorkloadSettings) -> Obj:
    """The CronJob, with a digest of its own spec so an unchanged one is not re-applied."""
    interval = parse_duration(spec.schedule)
    body: Obj = {
        "schedule": cron_schedule(interval, monitor["metadata"]["name"]),
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": max(60, min(interval, 3600)),
        "successfulJobsHistoryLimit": HISTORY,
        "failedJobsHistoryLimit": HISTORY,
        "jobTemplate": {
            "metadata": {"labels": monitor_labels(monitor)},
            "spec": job_spec(monitor, task, settings, deadline=max(300, min(interval, 3600))),
        },
    }
    digest = _digest(json.dumps(body, sort_keys=True), 16)
    child = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(monitor),
            "labels": monitor_labels(monitor),
            "annotations": {TEMPLATE_HASH_ANNOTATION: digest},
        },
        "spec": body,
    }
    return owned(child, monitor)


def template_hash(child: Obj) -> str:
    return str(child["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION])


def run_now_job(monitor: Obj, cron: Obj, token: str) -> Obj:
    """A one-off run from the CronJob's template (what `kubectl create job --from=cronjob/...` does)."""
    template = copy.deepcopy(cron["spec"]["jobTemplate"])
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run_now_job_name(monitor, token),
            "labels": template["metadata"]["labels"],
            "annotations": {"kubeloop.io/run-now": token[:253]},
        },
        "spec": {**template["spec"], "ttlSecondsAfterFinished": RUN_NOW_TTL},
    }
    return owned(job, monitor)


def retrain_run(
    monitor: Obj, source: Obj, *, dataset_uri: str | None, number: int, reason: str, report_uri: str
) -> Obj:
    """The TrainingRun a retraining creates. Not owned by the monitor: the model versions it
    registers may serve production long after the monitor is gone."""
    spec = copy.deepcopy(source)
    if dataset_uri:
        spec.setdefault("dataset", {})["uri"] = dataset_uri
    meta = monitor["metadata"]
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": "TrainingRun",
        "metadata": {
            "name": retrain_name(monitor, number),
            "namespace": meta["namespace"],
            "labels": {
                MONITOR_LABEL: label_value(meta["name"]),
                MONITOR_UID_LABEL: meta["uid"],
                REASON_LABEL: reason,
            },
            "annotations": {REPORT_ANNOTATION: report_uri},
        },
        "spec": spec,
    }
