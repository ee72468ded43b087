"""Workload settings read from environment variables, with errors named by variable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

Settings = TypeVar("Settings", bound=BaseModel)


def validate_env(model: type[Settings], raw: dict[str, Any], names: Mapping[str, str], what: str) -> Settings:
    """`model` from `raw` (field -> text); a bad or missing value is reported by its variable name."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [
            f"{names.get(str(e['loc'][0]), str(e['loc'][0])) if e['loc'] else 'settings'}: {e['msg']}"
            for e in error.errors()
        ]
        raise ValueError(f"bad {what} environment: " + "; ".join(problems)) from None
