"""ModelMonitor handlers: observe the deployment, the stable version and the runs; plan; apply the
CronJob, start one-off runs and retrainings; export the drift gauges."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import BaseModel

from kubeloop import API_GROUP, API_VERSION
from kubeloop.api.v1alpha1 import ModelMonitorSpec
from kubeloop.api.v1alpha1.registry import MODEL_MONITOR
from kubeloop.controllers.core import Progress, register_kind
from kubeloop.kube.apply import apply
from kubeloop.kube.jobs import create_job, cron_job_annotation, jobs_after
from kubeloop.kube.objects import create_custom, get_custom
from kubeloop.operator import metrics
from kubeloop.operator.settings import current
from kubeloop.planning import modelmonitor
from kubeloop.planning import modelmonitor_children as children

Obj = dict[str, Any]
INTERVAL = 5.0  # seconds between looks at a monitor's Jobs


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def observe(monitor: Obj, spec: ModelMonitorSpec) -> modelmonitor.MonitorObserved:
    meta, status = monitor["metadata"], monitor.get("status") or {}
    namespace = meta["namespace"]
    found: dict[str, Any] = {}
    mdep = get_custom(namespace, "modeldeployments", spec.deployment)
    if mdep is not None:
        found["deployment_found"] = True
        found["model"] = (mdep.get("spec") or {}).get("model")
        version = ((mdep.get("status") or {}).get("stable") or {}).get("version")
        found["stable_version"] = int(version) if version else None
        if version and found["model"]:
            registered = get_custom(namespace, "modelversions", f"{found['model']}-v{version}")
            if registered is not None:
                found["model_folder"] = registered["spec"]["artifact"]["uri"].rsplit("/", 1)[0] + "/"
    found["cronjob_hash"] = cron_job_annotation(
        namespace, children.cronjob_name(monitor), children.TEMPLATE_HASH_ANNOTATION
    )
    last = status.get("lastRun") or {}
    after = (_parse(last["created"]), str(last.get("job") or "")) if last.get("created") else None
    selector = f"{children.MONITOR_UID_LABEL}={meta['uid']}"
    found["runs"] = [
        modelmonitor.RunObserved(created, state) for created, state in jobs_after(namespace, selector, after)
    ]
    retrain_name = ((status.get("lastRetrain") or {}).get("trainingRun") or {}).get("name")
    if retrain_name:
        run = get_custom(namespace, "trainingruns", retrain_name)
        found["retrain_exists"] = run is not None
        found["retrain_phase"] = ((run or {}).get("status") or {}).get("phase")
    source = spec.retrain.training_run
    if spec.retrain.enabled and source is not None and source.name:
        copied = get_custom(namespace, "trainingruns", source.name)
        found["source_spec"] = copied.get("spec") if copied else None
    return modelmonitor.MonitorObserved(**found)


def export_gauges(monitor: Obj, status: Obj) -> None:
    meta = monitor["metadata"]
    scores = {f["name"]: float(f["score"]) for f in status.get("features") or [] if "score" in f}
    detected = status.get("phase") in ("Drifting", "Degraded") and bool(status.get("driftedFeatures"))
    metrics.set_monitor_gauges(meta["namespace"], meta["name"], scores, detected)


def progress(monitor: Obj, spec: BaseModel) -> Progress:
    assert isinstance(spec, ModelMonitorSpec)
    settings = current()
    plan = modelmonitor.plan_monitor(
        monitor, spec, observe(monitor, spec), settings.workloads(), datetime.now(UTC)
    )
    for child in plan.apply:
        apply(child)
    for job in plan.create_jobs:
        create_job(job)
    if plan.retrain is not None:  # before the status write: a retried reconcile finds it made (409)
        create_custom("trainingruns", plan.retrain)
    export_gauges(monitor, plan.status)
    return Progress(plan.status, plan.events)


def always(status: Obj) -> bool:
    """Runs finish on the CronJob's schedule, so every monitor is looked at regularly."""
    return True


register_kind(MODEL_MONITOR, modelmonitor.POLICY, progress, active=always, interval=INTERVAL)


@kopf.on.delete(API_GROUP, API_VERSION, MODEL_MONITOR.plural, id="gauges", optional=True)
def forget(meta: kopf.Meta, **_: Any) -> None:
    """A deleted monitor's gauges go with it (its CronJob and Jobs go by owner references)."""
    metrics.forget_monitor(str(meta["namespace"]), str(meta["name"]))
