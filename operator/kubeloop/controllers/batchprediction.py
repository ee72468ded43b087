"""BatchPrediction handlers: resolve the version, start runs (Job or CronJob), follow them, notify."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import BatchPredictionSpec
from kubeloop.api.v1alpha1.registry import BATCH_PREDICTION
from kubeloop.controllers.core import Progress, register_kind
from kubeloop.kube.apply import apply
from kubeloop.kube.jobs import create_job, cron_job_annotation, labelled_jobs
from kubeloop.kube.objects import get_custom
from kubeloop.operator import metrics
from kubeloop.operator.settings import current
from kubeloop.planning import batchprediction as planner
from kubeloop.planning.batchprediction_children import (
    BP_LABEL,
    HASH_ANNOTATION,
    ROLE_LABEL,
    score_job_name,
    version_object_name,
)

Obj = dict[str, Any]
FOLLOW_INTERVAL = 5.0  # seconds between checks of a BatchPrediction's runs


def observe(bp: Obj, spec: BatchPredictionSpec) -> planner.BatchObserved:
    namespace, name = bp["metadata"]["namespace"], bp["metadata"]["name"]
    number, deployment_found = spec.version, True
    if spec.from_deployment:
        deployment = get_custom(namespace, "modeldeployments", spec.from_deployment)
        deployment_found = deployment is not None
        stable = ((deployment or {}).get("status") or {}).get("stable") or {}
        number = stable.get("version")  # status only: the ModelDeployment's controller owns the rest
    version = None
    if number:
        found = get_custom(namespace, "modelversions", version_object_name(spec, int(number)))
        artifact = ((found or {}).get("spec") or {}).get("artifact") or {}
        phase = ((found or {}).get("status") or {}).get("phase")
        version = planner.VersionState(
            int(number), found is not None, phase, artifact.get("uri", ""), artifact.get("sha256", "")
        )
    settled = planner.settled_runs(dict(bp.get("status") or {}))
    jobs = labelled_jobs(namespace, f"{BP_LABEL}={name}", lambda job: _run_of(bp, job) in settled)
    runs = [job for job in jobs if job.labels.get(ROLE_LABEL) == "score"]
    notifications = {_run_of(bp, job.name): job for job in jobs if job.labels.get(ROLE_LABEL) == "notify"}
    cron_hash = cron_job_annotation(namespace, score_job_name(bp), HASH_ANNOTATION) if spec.schedule else None
    return planner.BatchObserved(version, deployment_found, runs, notifications, cron_hash)


def _run_of(bp: Obj, job: str) -> str:
    """The run a Job belongs to: itself, or the run its notification Job is about."""
    notify_prefix = f"{bp['metadata']['name']}-notify"
    return score_job_name(bp) + job.removeprefix(notify_prefix) if job.startswith(notify_prefix) else job


def progress(bp: Obj, spec: BaseModel) -> Progress:
    assert isinstance(spec, BatchPredictionSpec)
    plan = planner.plan_batch(bp, spec, observe(bp, spec), current().workloads(), datetime.now(UTC))
    for obj in plan.apply:
        apply(obj)
    for job in plan.create:
        create_job(job)
    namespace, name = bp["metadata"]["namespace"], bp["metadata"]["name"]

    def count() -> None:
        for run in plan.finished:
            metrics.batch_run_finished(namespace, name, run)
        for run in plan.notified:
            metrics.batch_notification_finished(namespace, name, run["notification"]["phase"])

    return Progress(plan.status, plan.events, [count])


register_kind(BATCH_PREDICTION, planner.POLICY, progress, active=planner.active, interval=FOLLOW_INTERVAL)
