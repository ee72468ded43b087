"""ModelDeployment: which version serves, which one is being rolled out, and the objects for both.

(spec, what the API and the routers show, now) -> children to apply or delete, ModelVersion stage
changes, status and Events. The rollout's own steps are in planning/rollout.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelDeploymentSpec
from kubeloop.api.v1alpha1.modeldeployment import RolloutOutcome, TrackPolicy
from kubeloop.contracts.routing import Backend, RouterStats, RoutingMode, RoutingTable
from kubeloop.planning import rollout
from kubeloop.planning.conditions import put_condition
from kubeloop.planning.core import Event, KindPolicy, Summary
from kubeloop.planning.modeldeployment_children import (
    ServedVersion,
    endpoint,
    router_children,
    routing_config_map,
    server_children,
    version_child_name,
)
from kubeloop.planning.trainingrun import LOWER_IS_BETTER
from kubeloop.planning.workloads import WorkloadSettings

Obj = dict[str, Any]


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    """Until a version serves; from then on the rollout planner owns phase and conditions."""
    assert isinstance(spec, ModelDeploymentSpec)
    if status.get("stable"):
        return None
    target = f"version {spec.version}" if spec.version is not None else "a tracked version"
    return Summary(
        "Progressing", "Available", False, "NoStableVersion", f"nothing served yet; waiting for {target}"
    )


POLICY = KindPolicy(ModelDeploymentSpec, summarize, "Degraded", "Available")


@dataclass(frozen=True)
class VersionView:
    """A ModelVersion of the deployment's model, as the planner needs it."""

    number: int
    ready: bool  # validated (phase Ready)
    stage: str | None
    metrics: dict[str, float]
    served: ServedVersion


@dataclass(frozen=True)
class Observed:
    versions: dict[int, VersionView]
    ready: dict[int, int]  # ready model-server pods per version Deployment
    present: frozenset[int]  # versions whose serving children exist
    router_ready: int
    stats: RouterStats | None  # merged over the router pods, for the status's current epoch
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class DeploymentPlan:
    status: Obj
    events: list[Event]
    apply: list[Obj]
    delete: list[int]  # versions whose serving children go
    stages: list[rollout.StageChange]


def resolve_target(spec: ModelDeploymentSpec, observed: Observed, history: list[Obj],
                   generation: int | None) -> tuple[int | None, str]:  # fmt: skip
    """The version the spec asks for, or None and why not."""
    versions = observed.versions
    if spec.version is not None:
        found = versions.get(spec.version)
        if found is None:
            return None, f"ModelVersion {spec.model}-v{spec.version} does not exist"
        if not found.ready:
            return None, f"ModelVersion {spec.model}-v{spec.version} is not validated (yet)"
        if rollout.turned_down(history, spec.version, generation):
            return None, f"version {spec.version} was rolled back; change the spec to retry it"
        return spec.version, ""
    track = spec.track
    assert track is not None
    eligible = [v for v in versions.values() if v.ready and v.stage != "Rejected"
                and not rollout.turned_down(history, v.number, generation)]  # fmt: skip
    if track.policy == TrackPolicy.BEST_METRIC:
        metric = track.metric.value if track.metric is not None else ""
        sign = -1 if metric in LOWER_IS_BETTER else 1
        scored = [v for v in eligible if metric in v.metrics]
        best = max(scored, key=lambda v: (sign * v.metrics[metric], v.number), default=None)
        return (best.number, "") if best else (None, f"no validated version of {spec.model} reports {metric}")
    newest = max(eligible, key=lambda v: v.number, default=None)
    return (newest.number, "") if newest else (None, f"no validated version of {spec.model} yet")


def plan_deployment(mdep: Obj, spec: ModelDeploymentSpec, observed: Observed, settings: WorkloadSettings,
                    now: datetime) -> DeploymentPlan:  # fmt: skip
    status = dict(mdep.get("status") or {})
    generation = mdep["metadata"].get("generation")
    step = rollout.Step(status, spec, observed.annotations, generation, now)
    target, why = resolve_target(spec, observed, list(status.get("history") or []), generation)
    stable = (status.get("stable") or {}).get("version")
    if stable is None and target is not None:  # the first version goes straight in
        status["stable"], stable = {"version": target, "ready": 0}, target
        step.events.append(Event("Normal", "Deploying", f"serving version {target}"))
    if status.get("candidate"):
        candidate = int(status["candidate"]["version"])
        if target is not None and target != candidate:  # the spec moved on: this rollout is moot
            rollout.roll_back(step, RolloutOutcome.ABORTED, "Superseded", f"the spec now asks for {target}")
        else:
            rollout.advance(step, observed.ready.get(candidate, 0), observed.stats)
    elif target is not None and stable is not None and target != stable:
        rollout.start(step, target)
    if stable is not None:
        _steady_state(step, observed, why)
    else:
        step.message = why
        status["phase"] = "Progressing"
    status["endpoint"] = endpoint(mdep)
    status["observedGeneration"] = generation
    _conditions(step, observed, why)
    return DeploymentPlan(status, step.events, _children(mdep, spec, status, observed, settings),
                          _retired(status, observed), _stage_sync(step, observed))  # fmt: skip


def _steady_state(step: rollout.Step, observed: Observed, why: str) -> None:
    status = step.status
    stable = int(status["stable"]["version"])
    ready = observed.ready.get(stable, 0)
    status["stable"] = {"version": stable, "ready": ready}
    if status.get("candidate"):
        return
    serving = ready > 0 and observed.router_ready > 0
    was = status.get("phase")
    if serving:
        phase = "RolledBack" if was == "RolledBack" else "Available"
    else:
        phase = "Degraded" if was in ("Available", "RolledBack", "Degraded") else "Progressing"
    if phase != was:
        status["phase"] = phase
        kind = "Warning" if phase == "Degraded" else "Normal"
        step.events.append(Event(kind, phase, f"version {stable}: {ready} ready server pods, "
                                 f"{observed.router_ready} ready routers"))  # fmt: skip
    step.message = step.message or why or f"version {stable} serving"


def _stage_sync(step: rollout.Step, observed: Observed) -> list[rollout.StageChange]:
    """The stage changes of this step, plus Production for a stable version that is serving."""
    changes = list(step.stages)
    stable = step.status.get("stable") or {}
    view = observed.versions.get(int(stable.get("version") or 0))
    pending = {c.version for c in changes}
    if view is not None and stable.get("ready") and view.stage != "Production" and view.number not in pending:
        changes.append(rollout.StageChange(view.number, "Production", "serving as the stable version",
                                           "kubeloop-operator"))  # fmt: skip
    return changes


def _conditions(step: rollout.Step, observed: Observed, why: str) -> None:
    status, generation, now = step.status, step.generation, step.now

    def put(kind: str, value: bool, reason: str, message: str) -> None:
        put_condition(status, kind, value, reason, message, generation=generation, now=now)

    stable = status.get("stable") or {}
    ready, routers = int(stable.get("ready") or 0), observed.router_ready
    put("Available", ready > 0 and routers > 0, "Serving" if ready > 0 and routers > 0 else "NotServing",
        f"stable version {stable.get('version')}: {ready} ready server pods, {routers} ready routers"
        if stable else why)  # fmt: skip
    rolling = bool(status.get("candidate")) or status.get("phase") == "Progressing"
    put("Progressing", rolling, str(status.get("phase") or "Progressing") if rolling else "Idle",
        step.message or "no rollout in progress")  # fmt: skip
    degraded = status.get("phase") == "Degraded" or (bool(why) and not status.get("candidate"))
    put("Degraded", degraded, "Degraded" if degraded else "Healthy", why or step.message)


def routing_table(mdep: Obj, spec: ModelDeploymentSpec, status: Obj) -> RoutingTable:
    name = mdep["metadata"]["name"]

    def backend(version: int) -> Backend:
        return Backend(version=version, service=version_child_name(name, version))

    stable = backend(int(status["stable"]["version"]))
    table = RoutingTable(deployment=name, model=spec.model, epoch=rollout.epoch(status), stable=stable)
    candidate = status.get("candidate") or {}
    if not candidate.get("stepStartTime"):
        return table
    table.candidate = backend(int(candidate["version"]))
    if candidate.get("step") is None:
        table.mode, table.shadow_percent = RoutingMode.SHADOW, spec.rollout.shadow.percent
    else:
        table.mode, table.weight = RoutingMode.CANARY, int(candidate.get("weight") or 0)
    return table


def _children(mdep: Obj, spec: ModelDeploymentSpec, status: Obj, observed: Observed,
              settings: WorkloadSettings) -> list[Obj]:  # fmt: skip
    if not status.get("stable"):
        return []
    children: list[Obj] = []
    roles = {int(status["stable"]["version"]): "stable"}
    if status.get("candidate"):
        roles[int(status["candidate"]["version"])] = "candidate"
    for number, role in roles.items():
        view = observed.versions.get(number)
        if view is not None:
            children += server_children(mdep, spec, view.served, role, settings)
    children += router_children(mdep, spec, settings)
    children.append(routing_config_map(mdep, spec, routing_table(mdep, spec, status)))
    return children


def _retired(status: Obj, observed: Observed) -> list[int]:
    keep = {int((status.get("stable") or {}).get("version") or 0)}
    if status.get("candidate"):
        keep.add(int(status["candidate"]["version"]))
    return sorted(observed.present - keep)
