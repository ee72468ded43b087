"""What the planners need to know about a Job, read off the Job and its pods by the controller."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Result = TypeVar("Result", bound=BaseModel)
OOM_KILLED = "OOMKilled"  # the kubelet's reason for a container its memory cgroup killed


@dataclass(frozen=True)
class JobState:
    name: str
    complete: bool = False
    failed: bool = False
    reason: str = ""  # the Job's Failed condition reason, e.g. BackoffLimitExceeded, DeadlineExceeded
    message: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)  # termination messages (JSON) of ended pods
    waiting: list[str] = field(default_factory=list)  # "pod: Reason: message" of pods that cannot start
    oom_killed: list[str] = field(default_factory=list)  # "pod P: container C (memory limit 64Mi)"
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    created: str | None = None  # timestamps as the API server writes them (2024-06-01T02:00:00Z)
    start_time: str | None = None
    completion_time: str | None = None  # when it completed, or when it was marked Failed
    active: int = 0  # pods running
    failed_indexes: str = ""  # Indexed Jobs with backoffLimitPerIndex: e.g. "1,3-4"


def failure(job: JobState, reason: str, message: str) -> tuple[str, str]:
    """(reason, message) of a Job that failed without a result of its own. An out-of-memory kill says
    so, since the fix is the pod's memory limit, not more retries; otherwise the Job's own condition,
    else the given defaults."""
    if job.oom_killed:
        return OOM_KILLED, f"out of memory: {'; '.join(job.oom_killed)}; raise the memory limit"
    return job.reason or reason, job.message or message


def parse_message(text: str | None) -> dict[str, Any] | None:
    """A container's termination message as JSON, or None (crashed before writing, or plain logs)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def last_result(job: JobState, model: type[Result]) -> Result | None:
    """The newest of the Job's results that parses as `model` (a retried pod reports last)."""
    for raw in reversed(job.results):
        try:
            return model.model_validate(raw)
        except ValidationError:
            continue
    return None


def index_list(text: str) -> list[int]:
    """Completion indexes in the Job status form "1,3-5" -> [1, 3, 4, 5]."""
    found: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found += range(int(first), int(last or first) + 1)
    return sorted(set(found))
