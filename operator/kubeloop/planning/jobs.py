"""What the planners need to know about a Job, read off the Job and its pods by the controller."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Result = TypeVar("Result", bound=BaseModel)


@dataclass(frozen=True)
class JobState:
    name: str
    complete: bool = False
    failed: bool = False
    reason: str = ""  # the Job's Failed condition reason, e.g. BackoffLimitExceeded, DeadlineExceeded
    message: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)  # termination messages (JSON) of ended pods
    waiting: list[str] = field(default_factory=list)  # "pod: Reason: message" of pods that cannot start


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
