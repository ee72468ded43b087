"""CEL validation rules (`x-kubernetes-validations`) and their Python twins.

Each cross-field rule is written once as a :class:`CelRule`; the CRD carries the CEL text so the
API server rejects bad input, and the pydantic model calls :meth:`CelRule.require` with the same
condition written in Python, so both sides reject the same input with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VALIDATIONS_KEY = "x-kubernetes-validations"


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry: a CEL expression that must be true, and why."""

    rule: str
    message: str
    # Where the API server reports the error, e.g. ".metadata.name" for a rule on the whole object
    # (otherwise root-level errors show up as "<nil>: Invalid value").
    field_path: str | None = None

    def as_schema(self) -> dict[str, str]:
        schema = {"rule": self.rule, "message": self.message}
        if self.field_path:
            schema["fieldPath"] = self.field_path
        return schema

    def require(self, holds: bool) -> None:
        """Raise the rule's message when the Python twin of the rule does not hold."""
        if not holds:
            raise ValueError(self.message)

    @property
    def is_transition_rule(self) -> bool:
        """Rules that mention oldSelf only run on updates (the API server skips them on create)."""
        return "oldSelf" in self.rule


def validations(*rules: CelRule) -> dict[str, Any]:
    """JSON-schema fragment attaching `rules` to a model or field (for json_schema_extra)."""
    return {VALIDATIONS_KEY: [rule.as_schema() for rule in rules]}


def list_map(*keys: str) -> dict[str, Any]:
    """Lists keyed by a field: the API server enforces unique keys and server-side apply merges per key."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def list_set() -> dict[str, Any]:
    """Lists of unique scalars."""
    return {"x-kubernetes-list-type": "set"}


def min_properties(count: int) -> dict[str, Any]:
    return {"minProperties": count}
