"""The part of every reconcile that is the same for all kinds: check the spec, then write
observedGeneration, phase and the kind's summary condition; an Event only on a transition.

A spec the API server accepted can still be wrong in ways CEL cannot see (rules of our pydantic
models, or a kind's own checks): that is the InvalidSpec condition plus a Warning Event, never an
exception that Kopf would retry forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from kubeloop.planning.conditions import find, put_condition, remove_condition, set_condition

INVALID_SPEC = "InvalidSpec"
Status = dict[str, Any]


@dataclass(frozen=True)
class Summary:
    """Where a valid resource stands: its phase and its summary condition."""

    phase: str
    condition: str
    status: bool | None
    reason: str
    message: str


@dataclass(frozen=True)
class KindPolicy:
    """What the core planner needs to know about one kind."""

    spec_model: type[BaseModel]
    # The phase and summary condition of a valid resource, or None once the kind's own controller
    # owns them (training started, rollout live): the core then leaves them alone.
    summarize: Callable[[BaseModel, Status], Summary | None]
    invalid_phase: str
    summary_condition: str
    extra_checks: Callable[[BaseModel], list[str]] = field(default=lambda spec: [])


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    status: Status
    events: list[Event]

    def changes(self, current: Status) -> bool:
        return status_changes(current, self.status)


def status_changes(current: Status, desired: Status) -> bool:
    """Whether writing `desired` (a merge patch) would change `current`."""
    return any(current.get(key) != value for key, value in desired.items())


def spec_problems(policy: KindPolicy, spec: dict[str, Any]) -> tuple[BaseModel | None, list[str]]:
    try:
        parsed = policy.spec_model.model_validate(spec)
    except ValidationError as error:
        return None, [_describe(e) for e in error.errors()]
    return parsed, policy.extra_checks(parsed)


def _describe(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "spec"
    return f"spec.{location}: {error['msg'].removeprefix('Value error, ')}"


def plan_core(policy: KindPolicy, resource: dict[str, Any], now: datetime) -> Plan:
    """observedGeneration, phase and conditions for `resource` as the API server returned it."""
    current: Status = dict(resource.get("status") or {})
    generation = resource["metadata"].get("generation")
    conditions = list(current.get("conditions") or [])
    parsed, problems = spec_problems(policy, resource.get("spec") or {})
    if parsed is None or problems:
        message = "; ".join(problems)
        conditions = set_condition(conditions, INVALID_SPEC, True, "SpecRejected", message,
                                   generation=generation, now=now)  # fmt: skip
        conditions = set_condition(conditions, policy.summary_condition, False, INVALID_SPEC, message,
                                   generation=generation, now=now)  # fmt: skip
        phase = policy.invalid_phase
    else:
        conditions = remove_condition(conditions, INVALID_SPEC)
        summary = policy.summarize(parsed, current)
        phase = current.get("phase") or ""
        if summary is not None:
            conditions = set_condition(conditions, summary.condition, summary.status, summary.reason,
                                       summary.message, generation=generation, now=now)  # fmt: skip
            phase = summary.phase
    status = {"observedGeneration": generation, "phase": phase, "conditions": conditions}
    return Plan(status, _transition_events(current, status, policy.summary_condition))


def _transition_events(before: Status, after: Status, summary_condition: str) -> list[Event]:
    """Events only where something changed: a new phase, or the spec turning (in)valid."""
    events = []
    was_invalid, is_invalid = (
        find(before.get("conditions") or [], INVALID_SPEC),
        find(after["conditions"], INVALID_SPEC),
    )
    if is_invalid and (not was_invalid or was_invalid.get("message") != is_invalid["message"]):
        events.append(Event("Warning", INVALID_SPEC, is_invalid["message"]))
    if before.get("phase") != after["phase"]:
        summary = find(after["conditions"], summary_condition) or {}
        events.append(Event("Normal", after["phase"], summary.get("message") or f"phase {after['phase']}"))
    return events


class KindPlan(Protocol):
    """What a kind's plan holds for every kind: the status being written and the Events to post."""

    status: Status
    events: list[Event]


class Step:
    """One reconcile of one resource by its kind's planner: its generation, the clock, and the
    status and Events it writes into the plan."""

    def __init__(self, resource: dict[str, Any], plan: KindPlan, now: datetime) -> None:
        self.plan, self.now = plan, now
        self.generation = resource["metadata"].get("generation")

    @property
    def status(self) -> Status:
        return self.plan.status

    def condition(self, kind: str, value: bool | None, reason: str, message: str) -> None:
        put_condition(self.status, kind, value, reason, message, generation=self.generation, now=self.now)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.plan.events.append(Event(kind, reason, message[:1024]))  # what an Event can carry
