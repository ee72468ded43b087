"""ModelVersion: the registry entry waits for validation of its artifact."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelVersionSpec
from kubeloop.planning.core import KindPolicy, Summary


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    if status.get("phase") in ("Validating", "Ready"):
        return None
    return Summary(
        "Pending", "Validated", None, "ValidationPending", "the artifact has not been validated yet"
    )


POLICY = KindPolicy(ModelVersionSpec, summarize, "Failed", "Validated")
