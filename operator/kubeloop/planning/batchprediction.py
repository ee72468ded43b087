"""BatchPrediction: resolve the version, start the runs (a Job, or a CronJob that starts them), follow
each run to its end, then its notification.

One-off:   Pending (no validated version yet) -> Running -> Succeeded | Failed
Scheduled: Pending -> Scheduled <-> Running (one run at a time); Suspended while spec.suspend
Each finished run gets a notification Job (it also writes the run's manifest); its outcome is the
run's `notification` and the Notified condition. History keeps the last spec.historyLimit runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import BatchPredictionSpec
from kubeloop.planning.batchprediction_children import (
    HASH_ANNOTATION,
    Resolved,
    cron_job,
    notify_job,
    score_job,
)
from kubeloop.planning.batchprediction_runs import job_object, notification_status, run_status, summary_of
from kubeloop.planning.core import Event, KindPolicy, Step, Summary
from kubeloop.planning.jobs import JobState
from kubeloop.planning.workloads import WorkloadSettings

Obj = dict[str, Any]


# --- the spec checks CEL cannot do -----------------------------------------------------------------

_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")),
    ("day of week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_CRON_ITEM = re.compile(r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?$")


def cron_problems(schedule: str) -> list[str]:
    """What is wrong with a five-field cron schedule (macros such as @daily are fine)."""
    if schedule.startswith("@"):
        return []
    problems = []
    for text, (name, low, high, names) in zip(schedule.split(), _CRON_FIELDS, strict=False):
        for item in text.split(","):
            match = _CRON_ITEM.match(item)
            bad = match is None or (item.startswith("?") and name not in ("day of month", "day of week"))
            if match is not None and not bad:
                values = [v for v in re.split(r"[-/]", item.split("/")[0]) if v not in ("*", "?")]
                step = item.split("/")[1] if "/" in item else "1"
                bad = int(step) == 0 or any(not _in_range(v, low, high, names) for v in values)
            if bad:
                problems.append(f"spec.schedule: {name} {item!r} is not valid (allowed {low}-{high})")
    return problems


def _in_range(value: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if value.isdigit():
        return low <= int(value) <= high
    return value.upper() in names


def extra_checks(spec: BaseModel) -> list[str]:
    assert isinstance(spec, BatchPredictionSpec)
    return cron_problems(spec.schedule) if spec.schedule else []


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    if status.get("phase"):
        return None  # the kind's own step owns the phase from the first reconcile on
    return Summary("Pending", "Succeeded", None, "Accepted", "spec accepted; no run has started")


POLICY = KindPolicy(BatchPredictionSpec, summarize, "Failed", "Succeeded", extra_checks)


# --- what the controller observed ----------------------------------------------------------------


@dataclass(frozen=True)
class VersionState:
    """The ModelVersion a run would use: absent, or its spec.artifact and status.phase."""

    number: int
    exists: bool
    phase: str | None = None
    uri: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class BatchObserved:
    version: VersionState | None  # None: no number to look up (the deployment has no stable version)
    deployment_found: bool = True  # with spec.fromDeployment
    runs: list[JobState] = field(default_factory=list)  # scoring Jobs, oldest first
    notifications: dict[str, JobState] = field(default_factory=dict)  # run name -> its notify Job
    cron_hash: str | None = None  # the applied CronJob's template hash; None: no CronJob


@dataclass
class BatchPlan:
    status: Obj
    events: list[Event] = field(default_factory=list)
    create: list[Obj] = field(default_factory=list)  # Jobs that do not exist yet
    apply: list[Obj] = field(default_factory=list)  # the CronJob, when its template changed
    finished: list[Obj] = field(default_factory=list)  # runs that ended in this reconcile (metrics)
    notified: list[Obj] = field(default_factory=list)  # notifications that ended in this reconcile


# --- the version ---------------------------------------------------------------------------------------


def resolve(spec: BatchPredictionSpec, observed: BatchObserved) -> tuple[Resolved | None, str, str]:
    """The usable version, or None with a CamelCase reason and a message."""
    source = f" (stable in ModelDeployment {spec.from_deployment})" if spec.from_deployment else ""
    if spec.from_deployment and not observed.deployment_found:
        return None, "DeploymentMissing", f"ModelDeployment {spec.from_deployment} does not exist"
    version = observed.version
    if version is None:
        return None, "NoStableVersion", f"ModelDeployment {spec.from_deployment} has no stable version yet"
    name = f"{spec.model}-v{version.number}"
    if not version.exists:
        return None, "VersionMissing", f"ModelVersion {name}{source} does not exist"
    if version.phase == "Failed":
        return None, "VersionRejected", f"ModelVersion {name}{source} failed its validation"
    if version.phase != "Ready":
        return None, "VersionNotValidated", f"ModelVersion {name}{source} is not validated yet"
    return Resolved(version.number, version.uri, version.sha256), "VersionResolved", f"{name}{source}"


# --- the plan ------------------------------------------------------------------------------------------

TERMINAL_RUN = ("Succeeded", "Failed")
TERMINAL_NOTIFICATION = ("Sent", "Failed", "Skipped")


class _Step(Step):
    """One reconcile of one BatchPrediction: reads `observed`, fills `plan`."""

    plan: BatchPlan

    def __init__(
        self,
        bp: Obj,
        spec: BatchPredictionSpec,
        observed: BatchObserved,
        settings: WorkloadSettings,
        now: datetime,
    ) -> None:
        self.before: Obj = dict(bp.get("status") or {})
        super().__init__(bp, BatchPlan(dict(self.before)), now)
        self.bp, self.spec, self.observed, self.settings = bp, spec, observed, settings


def plan_batch(
    bp: Obj, spec: BatchPredictionSpec, observed: BatchObserved, settings: WorkloadSettings, now: datetime
) -> BatchPlan:
    """The next step of a BatchPrediction whose spec is valid."""
    step = _Step(bp, spec, observed, settings, now)
    resolved, reason, message = resolve(spec, observed)
    if resolved is not None:
        step.status["version"] = resolved.number
    step.condition("VersionResolved", resolved is not None, reason, message)
    started = _schedule(step, resolved) if spec.schedule else _one_off(step, resolved)
    _follow_runs(step)
    _phase(step, started, reason, message)
    return step.plan


def _one_off(step: _Step, resolved: Resolved | None) -> bool:
    """Start the single run once a version is usable; it runs once, even if its Job is deleted later."""
    if step.observed.runs or step.before.get("lastRun") or resolved is None:
        return False
    step.plan.create.append(score_job(step.bp, step.spec, resolved, step.settings))
    return True


def _schedule(step: _Step, resolved: Resolved | None) -> bool:
    """Apply the CronJob when its template changed (a new version, schedule or shard count). With no
    usable version the CronJob is left as it is: runs go on with the version they had."""
    if resolved is None:
        return False
    desired = cron_job(step.bp, step.spec, resolved, step.settings)
    if step.observed.cron_hash != desired["metadata"]["annotations"][HASH_ANNOTATION]:
        step.plan.apply.append(desired)
    return False


def _follow_runs(step: _Step) -> None:
    history = {entry["name"]: entry for entry in step.before.get("history") or []}
    previous_last = step.before.get("lastRun") or {}
    known = {**history, **({previous_last["name"]: previous_last} if previous_last else {})}
    scheduled = step.spec.schedule is not None
    for job in step.observed.runs:
        before = known.get(job.name) or {}
        if _is_settled(before):  # nothing about it can change any more: keep what was recorded
            history[job.name] = step.status["lastRun"] = before
            continue
        run = run_status(step.spec, job)
        if run["phase"] in TERMINAL_RUN:
            _notification(step, job, run, before)
            history[job.name] = run
            if before.get("phase") in (None, "Running"):
                step.plan.finished.append(run)
                step.status["runs"] = int(step.status.get("runs") or 0) + 1
                if scheduled:
                    kind = "Normal" if run["phase"] == "Succeeded" else "Warning"
                    step.event(kind, f"Run{run['phase']}", f"run {job.name}: {run['message']}")
        elif not before and scheduled:
            step.event(
                "Normal", "RunStarted", f"run {job.name} started with {step.spec.model} v{run.get('version')}"
            )
        step.status["lastRun"] = run
    ordered = sorted(history.values(), key=lambda r: (r.get("completionTime") or "", r["name"]), reverse=True)
    if ordered:
        step.status["history"] = ordered[: step.spec.history_limit]
    _summary_conditions(step)


def _is_settled(run: Obj) -> bool:
    notified = (run.get("notification") or {}).get("phase")
    return run.get("phase") in TERMINAL_RUN and notified in TERMINAL_NOTIFICATION


def settled_runs(status: Obj) -> set[str]:
    """Runs whose Jobs need no more reading: over, and notified (or refused for good)."""
    recorded = [*(status.get("history") or []), *([status["lastRun"]] if status.get("lastRun") else [])]
    return {run["name"] for run in recorded if _is_settled(run)}


def _notification(step: _Step, job: JobState, run: Obj, before: Obj) -> None:
    """The run's notification Job: created once the run ended, then followed to its own end."""
    earlier = before.get("notification") or {}
    notify = step.observed.notifications.get(job.name)
    if notify is None and earlier.get("phase") in TERMINAL_NOTIFICATION:
        run["notification"] = earlier  # its Job is gone (deleted by hand): what it did stays recorded
        return
    if notify is None:
        summary = summary_of(step.bp, step.spec, run, job)
        step.plan.create.append(
            notify_job(step.bp, step.spec, job_object(step.bp, job), summary, step.settings)
        )
    run["notification"] = notification_status(notify)
    phase = run["notification"]["phase"]
    if phase in ("Sent", "Failed") and earlier.get("phase") not in TERMINAL_NOTIFICATION:
        step.plan.notified.append(run)
        if phase == "Sent":
            step.event("Normal", "Notified", f"run {job.name}: {run['notification']['message']}")
        else:
            step.event("Warning", "NotificationFailed", f"run {job.name}: {run['notification']['message']}")


def _summary_conditions(step: _Step) -> None:
    """Succeeded and Notified follow the latest run (scheduled: the latest finished run)."""
    last = step.status.get("lastRun")
    if not last:
        return
    if last["phase"] == "Running" and step.spec.schedule is not None:
        last = (step.status.get("history") or [None])[0]
        if last is None:
            return
    if last["phase"] == "Running":
        step.condition("Succeeded", None, "Running", f"run {last['name']}: {last.get('message', '')}")
    else:
        succeeded = last["phase"] == "Succeeded"
        reason = "RunSucceeded" if succeeded else "RunFailed"
        step.condition("Succeeded", succeeded, reason, f"run {last['name']}: {last.get('message', '')}")
    notification = last.get("notification")
    if step.spec.notify is None or not notification:
        return
    value = {"Sent": True, "Skipped": True, "Failed": False}.get(notification["phase"])
    reason = {"Sent": "Sent", "Skipped": "NotRequested", "Failed": "DeliveryFailed"}.get(
        notification["phase"], "Notifying"
    )
    step.condition("Notified", value, reason, f"run {last['name']}: {notification.get('message', '')}")


def _phase(step: _Step, started: bool, reason: str, message: str) -> None:
    status, spec = step.status, step.spec
    last = status.get("lastRun") or {}
    if spec.schedule is None:
        if started:
            phase, why = (
                "Running",
                f"run {step.bp['metadata']['name']}-score started in {spec.shards} shard(s)",
            )
        elif last:
            phase, why = last["phase"], last.get("message", "")
        else:
            phase, why = ("Failed" if reason == "VersionRejected" else "Pending"), message
    elif step.observed.cron_hash is None and not step.plan.apply:
        phase, why = "Pending", message
    elif spec.suspend:
        phase, why = "Suspended", "spec.suspend is true: no new runs"
    elif any(not (job.complete or job.failed) for job in step.observed.runs):
        phase, why = "Running", f"run {last.get('name')} running"
    else:
        phase, why = "Scheduled", f"next runs on '{spec.schedule}' with {spec.model} v{status.get('version')}"
    if not last:  # no run yet: say what the first one waits for
        waiting_for = phase if phase in ("Running", "Scheduled", "Suspended") else reason
        step.condition("Succeeded", False if phase == "Failed" else None, waiting_for, why)
    if status.get("phase") != phase and (
        spec.schedule is None
        or phase not in ("Running", "Scheduled")
        or step.before.get("phase") in (None, "Pending", "Suspended")
    ):
        step.event("Warning" if phase == "Failed" else "Normal", phase, why)
    status["phase"] = phase


def active(status: Obj) -> bool:
    """Keep following while a run or its notification may still change (scheduled: always)."""
    if status.get("phase") not in ("Succeeded", "Failed"):
        return True
    last = status.get("lastRun") or {}
    return bool(last) and (last.get("notification") or {}).get("phase") in (None, "Pending")
