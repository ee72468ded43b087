"""ModelDeployment handlers: observe versions, children and routers; plan; write children and stages."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelDeploymentSpec
from kubeloop.api.v1alpha1.registry import MODEL_DEPLOYMENT
from kubeloop.controllers.core import Progress, register_kind
from kubeloop.kube import serving
from kubeloop.kube.apply import RecentApplies, apply
from kubeloop.operator.metrics import rollout_observed
from kubeloop.operator.settings import current
from kubeloop.planning import modeldeployment, rollout
from kubeloop.planning.modeldeployment_children import ServedVersion
from kubeloop.store.layout import CARD_FILE

Obj = dict[str, Any]
REAPPLY_SECONDS = 60.0  # unchanged children are re-applied this often (repairs hand edits and deletions)
_applied = RecentApplies(REAPPLY_SECONDS)


def view(version: Obj) -> modeldeployment.VersionView:
    spec, status = version["spec"], version.get("status") or {}
    uri = spec["artifact"]["uri"]
    served = ServedVersion(int(spec["version"]), uri, spec["artifact"]["sha256"],
                           uri.rsplit("/", 1)[0] + "/" + CARD_FILE)  # fmt: skip
    validated = status.get("phase") == "Ready"
    metrics = dict(spec.get("metrics") or {})
    return modeldeployment.VersionView(served.number, validated, status.get("stage"), metrics, served)


def observe(mdep: Obj, found: list[Obj]) -> modeldeployment.Observed:
    meta, status = mdep["metadata"], mdep.get("status") or {}
    namespace, name = meta["namespace"], meta["name"]
    versions = {v.number: v for v in map(view, found)}
    ready = serving.server_readiness(namespace, name)
    candidate = status.get("candidate") or {}
    stats = None
    if candidate.get("stepStartTime"):  # routers keep statistics only while a candidate takes traffic
        stats = serving.router_stats(serving.router_addresses(namespace, name), rollout.epoch(status))
    routers = serving.router_readiness(namespace, name)
    annotations = dict(meta.get("annotations") or {})
    return modeldeployment.Observed(versions, ready, frozenset(ready), routers, stats, annotations)


def apply_changed(owner_uid: str, child: Obj) -> None:
    """Server-side apply, skipped for a child applied unchanged within the last minute."""
    key = (owner_uid, child["kind"], child["metadata"]["name"])
    digest = RecentApplies.digest(child)
    if _applied.due(key, digest, time.monotonic()):
        apply(child)
        _applied.applied(key, digest, time.monotonic())


def progress(mdep: Obj, spec: BaseModel) -> Progress:
    assert isinstance(spec, ModelDeploymentSpec)
    meta = mdep["metadata"]
    found = serving.model_versions(meta["namespace"], spec.model)
    plan = modeldeployment.plan_deployment(mdep, spec, observe(mdep, found), current().workloads(),
                                           datetime.now(UTC))  # fmt: skip
    by_number = {int(v["spec"]["version"]): v for v in found}
    for change in plan.stages:  # before the status write: a retried reconcile finds them done
        if change.version in by_number:
            serving.set_stage(by_number[change.version], change.stage, change.reason, change.by, meta["name"])
    for child in plan.apply:
        apply_changed(meta["uid"], child)
    for number in plan.delete:
        serving.delete_version_children(meta["namespace"], meta["name"], number)
    rollout_observed(meta["namespace"], meta["name"], mdep.get("status") or {}, plan.status)
    return Progress(plan.status, plan.events)


def rolling(status: Obj) -> bool:
    """Tick every couple of seconds while a rollout runs or the deployment is not yet serving."""
    return bool(status.get("candidate")) or status.get("phase") != "Available"


register_kind(MODEL_DEPLOYMENT, modeldeployment.POLICY, progress, active=rolling, idle_interval=10.0)
