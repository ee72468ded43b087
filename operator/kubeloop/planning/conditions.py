"""metav1.Condition bookkeeping: one condition per type, lastTransitionTime moves only on change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

Condition = dict[str, Any]


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """A new list with `type_` set; its lastTransitionTime is kept unless the status changed."""
    value = {True: "True", False: "False", None: "Unknown"}[status]
    previous = find(conditions, type_)
    moved = previous is None or previous.get("status") != value
    updated: Condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(now) if moved else previous["lastTransitionTime"],  # type: ignore[index]
    }
    if generation is not None:
        updated["observedGeneration"] = generation
    return [c for c in conditions if c.get("type") != type_] + [updated]


def put_condition(status: dict[str, Any], type_: str, value: bool | None, reason: str, message: str, *,
                  generation: int | None, now: datetime) -> None:  # fmt: skip
    """Set `type_` in `status["conditions"]` (see set_condition)."""
    status["conditions"] = set_condition(status.get("conditions") or [], type_, value, reason, message,
                                         generation=generation, now=now)  # fmt: skip


def remove_condition(conditions: list[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.get("type") != type_]


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.get("status") == "True"
