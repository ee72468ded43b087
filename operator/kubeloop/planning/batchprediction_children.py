"""What a BatchPrediction creates: the scoring Job (or the CronJob that starts one per run) and, once a
run is over, its notification Job. All of them run the server image with `python -m kubeloop.batch`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubeloop.api.v1alpha1 import BatchPredictionSpec
from kubeloop.api.v1alpha1.common import parse_duration
from kubeloop.api.v1alpha1.modelversion import version_name
from kubeloop.contracts.batch import (
    JOB_NAME_ENV,
    SMTP_ENV,
    WEBHOOK_URL_ENV,
    BatchTask,
    EmailTarget,
    InputRef,
    ModelRef,
    NotifyTask,
    OutputRef,
    RunSummary,
)
from kubeloop.contracts.tasks import EXIT_PERMANENT, TASK_ENV
from kubeloop.planning.workloads import WorkloadSettings, container, labels_for, owned, pod_spec, store_env
from kubeloop.store.layout import CARD_FILE

Obj = dict[str, Any]
BP_LABEL, ROLE_LABEL, MODEL_LABEL, VERSION_LABEL = (
    "kubeloop.io/batch-prediction",
    "kubeloop.io/batch-role",
    "kubeloop.io/model",
    "kubeloop.io/model-version",
)
HASH_ANNOTATION = "kubeloop.io/template-hash"
COMMAND = ["python", "-m", "kubeloop.batch"]
NOTIFY_RETRIES, NOTIFY_DEADLINE = 2, 600  # three pods, each trying every channel a few times
JOBS_KEPT = 3  # the CronJob keeps this many finished Jobs; status.history keeps more


@dataclass(frozen=True)
class Resolved:
    """The version a run scores with, as registered (validated) in the ModelVersion."""

    number: int
    uri: str
    sha256: str


def score_job_name(bp: Obj) -> str:
    """The one-off Job, and the CronJob (whose Jobs are named <this>-<minutes since the epoch>)."""
    return f"{bp['metadata']['name']}-score"


def notify_job_name(bp: Obj, run: str) -> str:
    """<bp>-notify for the one-off run <bp>-score; <bp>-notify-<n> for the CronJob's run <bp>-score-<n>."""
    return f"{bp['metadata']['name']}-notify" + run.removeprefix(score_job_name(bp))


def labels(bp: Obj, spec: BatchPredictionSpec, role: str, version: int | None = None) -> dict[str, str]:
    name = bp["metadata"]["name"]
    extra = {BP_LABEL: name, ROLE_LABEL: role, MODEL_LABEL: spec.model}
    if version is not None:
        extra[VERSION_LABEL] = str(version)
    return labels_for("batch", name, extra)


def batch_task(bp: Obj, spec: BatchPredictionSpec, version: Resolved) -> BatchTask:
    meta = bp["metadata"]
    return BatchTask(
        batch_prediction=f"{meta['namespace']}/{meta['name']}",
        model=ModelRef(
            name=spec.model,
            version=version.number,
            uri=version.uri,
            sha256=version.sha256,
            card_uri=version.uri.rsplit("/", 1)[0] + "/" + CARD_FILE,
        ),
        input=InputRef(uri=spec.input.uri, format=spec.input.format),
        output=OutputRef(
            uri=spec.output.uri,
            format=spec.output.format,
            include_input_columns=spec.output.include_input_columns,
            key_columns=spec.output.key_columns,
        ),
        shards=spec.shards,
        chunk_rows=spec.chunk_rows,
        max_reject_fraction=spec.max_reject_fraction,
    )


def _fail_on_permanent(container_name: str, action: str) -> Obj:
    return {
        "action": action,
        "onExitCodes": {"containerName": container_name, "operator": "In", "values": [EXIT_PERMANENT]},
    }


def score_job_spec(bp: Obj, spec: BatchPredictionSpec, version: Resolved, settings: WorkloadSettings) -> Obj:
    """An Indexed Job, one completion per shard. A shard that fails for good (bad input, too many
    rejects) fails its index at once and the run with it; a transient failure is retried once."""
    env: list[Obj] = [
        {"name": TASK_ENV, "value": batch_task(bp, spec, version).to_json()},
        # The run's folder is named after its Job, which a CronJob names only when it starts it.
        {
            "name": JOB_NAME_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
        },
        *store_env(settings),
    ]
    resources = spec.resources.model_dump(by_alias=True, exclude_defaults=False)
    scorer = container(
        "score",
        settings.server_image,
        env,
        command=COMMAND,
        args=["score"],
        resources=resources,
        pull_policy=settings.pull_policy,
    )
    return {
        "completionMode": "Indexed",
        "completions": spec.shards,
        "parallelism": spec.parallelism or spec.shards,
        "backoffLimitPerIndex": 1,
        "maxFailedIndexes": 0,  # one failed shard fails the run: its output would be incomplete
        "activeDeadlineSeconds": parse_duration(spec.deadline),
        "podFailurePolicy": {
            "rules": [
                _fail_on_permanent("score", "FailIndex"),
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {
            "metadata": {"labels": labels(bp, spec, "score", version.number)},
            "spec": pod_spec([scorer], restart_policy="Never"),
        },
    }


def score_job(bp: Obj, spec: BatchPredictionSpec, version: Resolved, settings: WorkloadSettings) -> Obj:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": score_job_name(bp), "labels": labels(bp, spec, "score", version.number)},
        "spec": score_job_spec(bp, spec, version, settings),
    }
    return owned(job, bp)


def cron_job(bp: Obj, spec: BatchPredictionSpec, version: Resolved, settings: WorkloadSettings) -> Obj:
    """The CronJob of a scheduled BatchPrediction; its template is re-applied when the version changes."""
    cron_spec: Obj = {
        "schedule": spec.schedule,
        "suspend": spec.suspend,
        "concurrencyPolicy": "Forbid",  # a run still going when the next is due: the next one is skipped
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": JOBS_KEPT,
        "failedJobsHistoryLimit": JOBS_KEPT,
        "jobTemplate": {
            "metadata": {"labels": labels(bp, spec, "score", version.number)},
            "spec": score_job_spec(bp, spec, version, settings),
        },
    }
    if spec.time_zone:
        cron_spec["timeZone"] = spec.time_zone
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": score_job_name(bp),
            "labels": labels(bp, spec, "schedule"),
            "annotations": {HASH_ANNOTATION: spec_hash(cron_spec)},
        },
        "spec": cron_spec,
    }
    return owned(cron, bp)


def spec_hash(obj: Obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def notify_job(
    bp: Obj, spec: BatchPredictionSpec, run: Obj, summary: RunSummary, settings: WorkloadSettings
) -> Obj:
    """Writes the run's manifest, then tells whoever spec.notify names. Owned by the run's Job, so it
    goes when the CronJob prunes that Job."""
    notify = spec.notify
    task = NotifyTask(
        summary=summary, shards=spec.shards, notify=notify is not None and summary.phase in notify.on
    )
    env: list[Obj] = [{"name": TASK_ENV, "value": ""}, *store_env(settings)]
    if notify is not None and notify.webhook is not None:
        task.webhook_url = notify.webhook.url
        if notify.webhook.url_secret is not None:
            task.webhook_from_secret = True
            secret = notify.webhook.url_secret
            key_ref = {"name": secret.name, "key": secret.key}
            env.append({"name": WEBHOOK_URL_ENV, "valueFrom": {"secretKeyRef": key_ref}})
    if notify is not None and notify.email is not None:
        task.email = EmailTarget(to=list(notify.email.to), sender=notify.email.sender)
        for key, variable in SMTP_ENV.items():
            ref = {"name": notify.email.smtp_secret, "key": key, "optional": key != "host"}
            env.append({"name": variable, "valueFrom": {"secretKeyRef": ref}})
    env[0]["value"] = task.to_json()
    resources = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    notifier = container(
        "notify",
        settings.server_image,
        env,
        command=COMMAND,
        args=["notify"],
        resources=resources,
        pull_policy=settings.pull_policy,
    )
    job_labels = labels(bp, spec, "notify", summary.version)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": notify_job_name(bp, summary.run), "labels": job_labels},
        "spec": {
            "backoffLimit": NOTIFY_RETRIES,
            "activeDeadlineSeconds": NOTIFY_DEADLINE,
            "podFailurePolicy": {"rules": [_fail_on_permanent("notify", "FailJob")]},
            "template": {
                "metadata": {"labels": job_labels},
                "spec": pod_spec([notifier], restart_policy="Never"),
            },
        },
    }
    return owned(job, run)


def version_object_name(spec: BatchPredictionSpec, number: int) -> str:
    return version_name(spec.model, number)
