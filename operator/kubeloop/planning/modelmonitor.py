"""ModelMonitor: a CronJob of monitor runs; each finished run's summary becomes the status; drift or
a performance drop confirmed on `consecutive` runs creates a TrainingRun, within cooldown and daily
limits, never while the previous one still trains.

Runs are read in the order their Jobs were created, each exactly once (status.lastRun.created
marks the last one read), so a restarted operator neither skips nor repeats a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from kubeloop.api.v1alpha1 import ModelMonitorSpec
from kubeloop.api.v1alpha1.common import format_duration, parse_duration
from kubeloop.api.v1alpha1.modelmonitor import RUN_NOW_ANNOTATION
from kubeloop.contracts.monitoring import MonitorSummary
from kubeloop.planning import modelmonitor_children as children
from kubeloop.planning.conditions import find, timestamp
from kubeloop.planning.core import Event, KindPolicy, Step, Summary
from kubeloop.planning.jobs import JobState, failure
from kubeloop.planning.workloads import WorkloadSettings

Obj = dict[str, Any]
BAD_PHASES = ("Drifting", "Degraded")
TERMINAL_RUN_PHASES = ("Succeeded", "Failed")
TOP_FEATURES, MAX_DRIFTED = 10, 1000


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    assert isinstance(spec, ModelMonitorSpec)
    if status.get("lastRun"):
        return None
    message = f"no monitoring run yet for deployment {spec.deployment}"
    return Summary("InsufficientData", "Healthy", None, "NoRunsYet", message)


POLICY = KindPolicy(ModelMonitorSpec, summarize, "Degraded", "Healthy")


@dataclass(frozen=True)
class RunObserved:
    """One Job of this monitor (scheduled by the CronJob or run now)."""

    created: datetime
    job: JobState

    @property
    def finished(self) -> bool:
        return self.job.complete or self.job.failed


@dataclass(frozen=True)
class MonitorObserved:
    deployment_found: bool = False
    model: str | None = None
    stable_version: int | None = None  # the ModelDeployment's status.stable.version
    model_folder: str | None = None  # where that version's profile.json and model.json are
    cronjob_hash: str | None = None  # template hash of the CronJob in the cluster; None: absent
    runs: list[RunObserved] = field(default_factory=list)  # Jobs created after the last one read
    retrain_phase: str | None = None  # phase of status.lastRetrain's TrainingRun; None: gone or none
    retrain_exists: bool = False
    source_spec: Obj | None = None  # spec of retrain.trainingRun.name, when that is set and found


@dataclass
class MonitorPlan:
    status: Obj
    events: list[Event] = field(default_factory=list)
    apply: list[Obj] = field(default_factory=list)  # the CronJob, when it is missing or outdated
    create_jobs: list[Obj] = field(default_factory=list)  # run-now Jobs
    retrain: Obj | None = None  # a TrainingRun to create


class _Step(Step):
    plan: MonitorPlan

    def __init__(
        self, monitor: Obj, spec: ModelMonitorSpec, observed: MonitorObserved, now: datetime
    ) -> None:
        super().__init__(monitor, MonitorPlan(dict(monitor.get("status") or {})), now)
        self.monitor, self.spec, self.observed = monitor, spec, observed
        self.retrain_running = observed.retrain_exists and observed.retrain_phase not in TERMINAL_RUN_PHASES


def plan_monitor(
    monitor: Obj, spec: ModelMonitorSpec, observed: MonitorObserved, settings: WorkloadSettings, now: datetime
) -> MonitorPlan:
    step = _Step(monitor, spec, observed, now)
    cron = _schedule(step, settings)
    if cron is not None:
        _run_now(step, cron)
    for run in sorted(observed.runs, key=lambda r: (r.created, r.job.name)):
        if not run.finished:
            break  # read in creation order: a later run waits for an earlier one still running
        _read_run(step, run)
    if step.retrain_running and spec.retrain.enabled and step.plan.retrain is None:
        name = (step.status.get("lastRetrain") or {}).get("trainingRun", {}).get("name", "")
        step.condition("Retraining", True, "TrainingRunRunning", f"TrainingRun {name} is training")
    elif find(step.status.get("conditions") or [], "Retraining") and not spec.retrain.enabled:
        step.condition("Retraining", False, "Disabled", "retraining is not enabled")
    return step.plan


def _schedule(step: _Step, settings: WorkloadSettings) -> Obj | None:
    """The CronJob for the stable version, or why there is none yet."""
    observed, spec = step.observed, step.spec
    if not observed.deployment_found:
        step.condition(
            "Scheduled", False, "DeploymentNotFound", f"ModelDeployment {spec.deployment} not found"
        )
        return None
    if observed.stable_version is None or observed.model is None:
        step.condition(
            "Scheduled",
            False,
            "NoStableVersion",
            f"ModelDeployment {spec.deployment} serves no stable version yet",
        )
        return None
    if observed.model_folder is None:
        name = f"{observed.model}-v{observed.stable_version}"
        step.condition("Scheduled", False, "VersionNotFound", f"ModelVersion {name} not found")
        return None
    task = children.monitor_task(
        step.monitor,
        spec,
        model=observed.model,
        version=observed.stable_version,
        model_folder=observed.model_folder,
        settings=settings,
    )
    cron = children.cronjob(step.monitor, spec, task, settings)
    if observed.cronjob_hash != children.template_hash(cron):
        step.plan.apply.append(cron)
    step.condition(
        "Scheduled",
        True,
        "CronJobReady",
        f"every {spec.schedule} ({cron['spec']['schedule']}) on {observed.model} "
        f"v{observed.stable_version}, window {spec.window}",
    )
    return cron


def _run_now(step: _Step, cron: Obj) -> None:
    token = (step.monitor["metadata"].get("annotations") or {}).get(RUN_NOW_ANNOTATION, "")
    if token and token != step.status.get("runNow"):
        job = children.run_now_job(step.monitor, cron, token)
        step.plan.create_jobs.append(job)
        step.status["runNow"] = token[:253]
        step.event("Normal", "RunRequested", f"run {job['metadata']['name']} started ({RUN_NOW_ANNOTATION})")


def _summary(job: JobState) -> MonitorSummary | None:
    for raw in reversed(job.results):
        try:
            return MonitorSummary.model_validate(raw)
        except ValidationError:
            continue
    return None


def _read_run(step: _Step, run: RunObserved) -> None:
    summary = _summary(run.job)
    previous = dict(step.status.get("lastRun") or {})
    last_run: Obj = {"time": timestamp(step.now), "job": run.job.name, "created": timestamp(run.created)}
    if summary is None or summary.outcome == "Failed" or not run.job.complete:
        reason, message = (summary.reason, summary.message) if summary else failure(
            run.job, "RunFailed", "the monitor run failed")  # fmt: skip
        step.status["lastRun"] = {**previous, **last_run, "succeeded": False}
        step.condition("RunSucceeded", False, reason, f"{run.job.name}: {message}")
        step.event("Warning", "RunFailed", f"{run.job.name}: {reason}: {message}"[:1000])
        return
    step.condition("RunSucceeded", True, "Succeeded", f"{run.job.name} finished")
    _apply_summary(step, summary, previous, last_run)
    _maybe_retrain(step, summary)


def _apply_summary(step: _Step, summary: MonitorSummary, previous: Obj, last_run: Obj) -> None:
    status, phase = step.status, summary.phase or "InsufficientData"
    same_version = previous.get("version") == summary.version
    if phase in BAD_PHASES:
        status["consecutive"] = (int(status.get("consecutive") or 0) if same_version else 0) + 1
    elif phase == "Healthy" or not same_version:
        status["consecutive"] = 0
    status["lastRun"] = {
        **last_run,
        "time": summary.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "samples": summary.samples,
        "version": summary.version,
        "succeeded": True,
    }
    status["driftScore"] = summary.drift_score
    status["features"] = [
        {"name": f.name[:256], "score": f.score, "drifted": f.drifted}
        for f in summary.features[:TOP_FEATURES]
    ]
    status["driftedFeatures"] = summary.drifted[:MAX_DRIFTED]
    status["reportUri"] = summary.report_uri or None
    performance = summary.performance
    status["performance"] = (
        {
            "metric": performance.metric,
            "value": performance.value,
            "baseline": performance.baseline,
            "labeledSamples": performance.labeled,
            "degraded": performance.degraded,
        }
        if performance
        else None
    )
    insufficient = phase == "InsufficientData"
    drifting = bool(summary.drifted) or summary.prediction_drifted
    unknown = None if insufficient else False
    step.condition(
        "Drifting",
        True if drifting and not insufficient else unknown,
        "DriftDetected" if drifting and not insufficient else summary.reason,
        summary.message if drifting else "no feature above its threshold",
    )
    degraded = bool(performance and performance.degraded)
    step.condition(
        "Degraded",
        True if degraded else unknown,
        "PerformanceDropped" if degraded else summary.reason,
        summary.message if degraded else "live performance within maxDrop",
    )
    step.condition("Healthy", None if insufficient else phase == "Healthy", summary.reason, summary.message)
    if status.get("phase") != phase:
        kind = "Warning" if phase in BAD_PHASES else "Normal"
        step.event(kind, phase, f"{summary.message} (report {summary.report_uri})"[:1000])
    status["phase"] = phase


def _hold(step: _Step, reason: str, message: str) -> None:
    current = find(step.status.get("conditions") or [], "Retraining") or {}
    if current.get("reason") != reason:
        step.event("Warning" if reason == "TemplateNotFound" else "Normal", "RetrainHeldBack", message)
    step.condition("Retraining", False, reason, message)


def _maybe_retrain(step: _Step, summary: MonitorSummary) -> None:
    retrain, status, now = step.spec.retrain, step.status, step.now
    if not retrain.enabled or summary.phase not in BAD_PHASES or step.plan.retrain is not None:
        return  # one retraining per reconcile at most; later runs of the same batch add nothing
    count = int(status.get("consecutive") or 0)
    if count < retrain.consecutive:
        _hold(step, "Confirming", f"{count} of {retrain.consecutive} consecutive runs {summary.phase}")
        return
    last = (status.get("lastRetrain") or {}).get("time")
    recent = [t for t in status.get("recentRetrains") or [] if now - _parse(t) < timedelta(days=1)]
    if step.retrain_running:
        _hold(step, "RetrainRunning", "the previous retraining is still training")
    elif last and now - _parse(last) < timedelta(seconds=parse_duration(retrain.cooldown)):
        wait = _parse(last) + timedelta(seconds=parse_duration(retrain.cooldown)) - now
        _hold(
            step,
            "Cooldown",
            f"cooldown {retrain.cooldown}: next retraining possible in "
            f"{format_duration(int(wait.total_seconds()))}",
        )
    elif len(recent) >= retrain.max_per_day:
        _hold(
            step, "DailyLimit", f"{len(recent)} retrainings in the last 24h (maxPerDay {retrain.max_per_day})"
        )
    else:
        _start_retrain(step, summary, recent)


def _start_retrain(step: _Step, summary: MonitorSummary, recent: list[str]) -> None:
    template = step.spec.retrain.training_run
    assert template is not None  # the spec model requires it when enabled
    source = template.template.to_dict() if template.template is not None else step.observed.source_spec
    if source is None:
        _hold(step, "TemplateNotFound", f"TrainingRun {template.name} to copy was not found")
        return
    number = int(step.status.get("retrainCount") or 0) + 1
    reason = "PerformanceDropped" if summary.phase == "Degraded" else "DriftDetected"
    run = children.retrain_run(
        step.monitor,
        source,
        dataset_uri=template.dataset_uri,
        number=number,
        reason=reason,
        report_uri=summary.report_uri,
    )
    name = run["metadata"]["name"]
    step.plan.retrain = run
    step.retrain_running = True
    step.status["retrainCount"] = number
    step.status["recentRetrains"] = [*recent, timestamp(step.now)][-24:]
    step.status["lastRetrain"] = {
        "time": timestamp(step.now),
        "reason": reason,
        "trainingRun": {"name": name, "namespace": run["metadata"]["namespace"]},
    }
    message = f"created TrainingRun {name}: {summary.message}"[:1000]
    step.condition("Retraining", True, "TrainingRunCreated", message)
    step.event("Normal", "RetrainTriggered", message)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
