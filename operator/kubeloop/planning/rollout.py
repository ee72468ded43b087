"""The rollout state machine of a ModelDeployment. All state lives in status, so a restarted
operator resumes a canary at the same step with the same routing epoch.

  no candidate ──new target──> candidate (stage Staging), waiting for its pods
  Direct:            ready ─────────────────────────────────────────────> promote
  Shadow:            ready ─> Shadowing (copies) ─ pass at end ─────────> promote
  Canary:            ready ─> Canary step 0..n (weights) ─ pass at end ─> promote
  ShadowThenCanary:  Shadowing, then the canary steps
  any analysis Fail ─> roll back (stage Rejected);  abort ─> roll back (stage Candidate)
  requireApproval:   the last pass waits in AwaitingApproval until approved
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubeloop.api.v1alpha1 import ModelDeploymentSpec
from kubeloop.api.v1alpha1.common import parse_duration
from kubeloop.api.v1alpha1.modeldeployment import RolloutOutcome, RolloutStrategy
from kubeloop.contracts.routing import RouterStats
from kubeloop.planning.analysis import Outcome, analyse, comparison
from kubeloop.planning.conditions import timestamp
from kubeloop.planning.core import Event

Obj = dict[str, Any]
APPROVE_ANNOTATION = "kubeloop.io/approve"  # "<version>": promote it once its analysis passed
APPROVED_BY_ANNOTATION = "kubeloop.io/approved-by"
PROMOTE_ANNOTATION = "kubeloop.io/promote"  # "<version>": promote now, skipping the remaining steps
ABORT_ANNOTATION = "kubeloop.io/abort"  # "<version>": roll it back now (like spec.rollout.abort)
HISTORY_LIMIT = 20
OPERATOR = "kubeloop-operator"  # "by" of the stage changes the operator decides alone
SHADOW_STRATEGIES = (RolloutStrategy.SHADOW, RolloutStrategy.SHADOW_THEN_CANARY)


@dataclass(frozen=True)
class StageChange:
    """A ModelVersion's registry stage to set, with its audit entry."""

    version: int
    stage: str
    reason: str
    by: str


@dataclass
class Step:
    """What one reconcile decided about the rollout: status edits, Events and stage changes."""

    status: Obj
    spec: ModelDeploymentSpec
    annotations: dict[str, str]
    generation: int | None
    now: datetime
    events: list[Event] = field(default_factory=list)
    stages: list[StageChange] = field(default_factory=list)
    message: str = ""  # the Progressing condition's message

    @property
    def candidate(self) -> Obj:
        return dict(self.status["candidate"])

    def set_candidate(self, **changes: Any) -> None:
        self.status["candidate"] = {k: v for k, v in {**self.status["candidate"], **changes}.items()
                                    if v is not None}  # fmt: skip


def epoch(status: Obj) -> str:
    """Names the current routing step; the routers restart their statistics when it changes."""
    stable = (status.get("stable") or {}).get("version")
    candidate = status.get("candidate")
    if not candidate:
        return f"v{stable}"
    where = "waiting" if not candidate.get("stepStartTime") else (
        "shadow" if candidate.get("step") is None else f"step{candidate['step']}")  # fmt: skip
    return f"v{stable}-v{candidate['version']}-{where}"


def start(step: Step, version: int) -> None:
    step.status["candidate"] = {"version": version, "weight": 0, "ready": 0, "startTime": timestamp(step.now)}
    step.status.pop("comparison", None)
    step.status["phase"] = "Progressing"
    strategy = step.spec.rollout.strategy.value
    step.events.append(Event("Normal", "RolloutStarted", f"rolling out version {version} ({strategy})"))
    step.stages.append(StageChange(version, "Staging", "rollout started", OPERATOR))


def advance(step: Step, ready: int, stats: RouterStats | None) -> None:
    """One tick of the rollout in progress."""
    candidate, rollout = step.candidate, step.spec.rollout
    version = int(candidate["version"])
    step.set_candidate(ready=ready)
    if rollout.abort or step.annotations.get(ABORT_ANNOTATION) == str(version):
        return roll_back(step, RolloutOutcome.ABORTED, "AbortRequested", "aborted on request")
    if ready < 1:
        step.message = f"waiting for the pods of version {version}"
        step.status["phase"] = step.status.get("phase") or "Progressing"
        return None
    if step.annotations.get(PROMOTE_ANNOTATION) == str(version):
        return promote(step, "PromotedOnRequest", step.annotations.get(APPROVED_BY_ANNOTATION))
    if rollout.strategy == RolloutStrategy.DIRECT:
        return promote(step, "Direct", None)
    if not candidate.get("stepStartTime"):
        return _enter_first_step(step)
    return _judge_step(step, stats)


def _enter_first_step(step: Step) -> None:
    if step.spec.rollout.strategy in SHADOW_STRATEGIES:
        step.set_candidate(stepStartTime=timestamp(step.now), weight=0)
        _phase(step, "Shadowing", f"copying {step.spec.rollout.shadow.percent}% of requests to the candidate")
    else:
        _enter_canary_step(step, 0)


def _enter_canary_step(step: Step, index: int) -> None:
    weight = step.spec.rollout.steps[index].weight
    step.set_candidate(step=index, weight=weight, stepStartTime=timestamp(step.now))
    _phase(step, "Canary", f"step {index + 1} of {len(step.spec.rollout.steps)}: {weight}% to the candidate")
    if index > 0:
        step.events.append(Event("Normal", "StepAdvanced", step.message))


def _phase(step: Step, phase: str, message: str) -> None:
    step.message = message
    if step.status.get("phase") != phase:
        step.status["phase"] = phase
        step.events.append(Event("Normal", phase, message))


def _judge_step(step: Step, stats: RouterStats | None) -> None:
    candidate, rollout = step.candidate, step.spec.rollout
    if stats is not None:
        step.status["comparison"] = comparison(stats)
    verdict = analyse(stats, rollout.analysis)
    if verdict.outcome == Outcome.FAIL:
        return roll_back(step, RolloutOutcome.ROLLED_BACK, verdict.reason, verdict.message)
    shadowing = candidate.get("step") is None
    duration = rollout.shadow.duration if shadowing else rollout.steps[candidate["step"]].duration
    started = datetime.fromisoformat(candidate["stepStartTime"].replace("Z", "+00:00"))
    left = started + timedelta(seconds=parse_duration(duration)) - step.now
    where = "shadow" if shadowing else f"step {candidate['step'] + 1} at {candidate.get('weight', 0)}%"
    if step.status.get("phase") == "AwaitingApproval":
        return _await_approval(step, verdict.message)
    if left > timedelta(0) or verdict.outcome == Outcome.WAIT:
        wait = f"{int(left.total_seconds())}s left" if left > timedelta(0) else "step time is up"
        step.message = f"{where}: {wait}; {verdict.message}"
        return None
    return _step_passed(step, verdict.message)


def _step_passed(step: Step, analysis: str) -> None:
    candidate, rollout = step.candidate, step.spec.rollout
    shadowing = candidate.get("step") is None
    if shadowing and rollout.strategy == RolloutStrategy.SHADOW_THEN_CANARY:
        step.events.append(Event("Normal", "ShadowPassed", analysis))
        return _enter_canary_step(step, 0)
    if not shadowing and candidate["step"] + 1 < len(rollout.steps):
        return _enter_canary_step(step, candidate["step"] + 1)
    if rollout.require_approval:
        return _await_approval(step, analysis)
    return promote(step, "AnalysisPassed", None)


def _await_approval(step: Step, analysis: str) -> None:
    version = str(step.candidate["version"])
    if step.annotations.get(APPROVE_ANNOTATION) == version:
        return promote(step, "Approved", step.annotations.get(APPROVED_BY_ANNOTATION) or "unknown")
    _phase(step, "AwaitingApproval", f"analysis passed ({analysis}); approve with "
           f"`kubeloop approve` or the annotation {APPROVE_ANNOTATION}: \"{version}\"")  # fmt: skip
    return None


def promote(step: Step, reason: str, approver: str | None) -> None:
    candidate = step.candidate
    version = int(candidate["version"])
    old = (step.status.get("stable") or {}).get("version")
    by = approver or OPERATOR
    if old is not None and old != version:
        step.stages.append(StageChange(int(old), "Archived", f"replaced by version {version}", by))
    step.stages.append(StageChange(version, "Production", f"promoted: {reason}", by))
    _finish(step, RolloutOutcome.PROMOTED, reason, approver)
    step.status["stable"] = {"version": version, "ready": int(candidate.get("ready", 0))}
    step.status["phase"] = "Available"
    detail = f" (approved by {approver})" if approver else ""
    step.events.append(Event("Normal", "Promoted", f"version {version} is now stable: {reason}{detail}"))
    step.message = f"version {version} promoted: {reason}"


def roll_back(step: Step, outcome: RolloutOutcome, reason: str, message: str) -> None:
    version = int(step.candidate["version"])
    rejected = outcome == RolloutOutcome.ROLLED_BACK
    stage = "Rejected" if rejected else "Candidate"
    step.stages.append(StageChange(version, stage, f"{reason}: {message}", OPERATOR))
    _finish(step, outcome, reason, None, message)
    step.status["phase"] = "RolledBack"
    step.events.append(Event("Warning", "RolledBack", f"version {version} rolled back: {reason}: {message}"))
    step.message = f"version {version} rolled back: {reason}: {message}"


def _finish(
    step: Step, outcome: RolloutOutcome, reason: str, approver: str | None, message: str = ""
) -> None:
    candidate = step.candidate
    record = {"version": int(candidate["version"]), "strategy": step.spec.rollout.strategy.value,
              "outcome": outcome.value, "reason": (f"{reason}: {message}" if message else reason)[:1024],
              "startTime": candidate.get("startTime"), "completionTime": timestamp(step.now),
              "generation": step.generation, "approvedBy": approver}  # fmt: skip
    record = {k: v for k, v in record.items() if v is not None}
    step.status["history"] = [*(step.status.get("history") or []), record][-HISTORY_LIMIT:]
    step.status["candidate"] = None


def turned_down(history: list[Obj], version: int, generation: int | None) -> bool:
    """Whether `version` was rolled back or aborted at this generation (retried once the spec changes)."""
    return any(r.get("version") == version and r.get("outcome") != RolloutOutcome.PROMOTED.value
               and r.get("generation") == generation for r in history)  # fmt: skip
