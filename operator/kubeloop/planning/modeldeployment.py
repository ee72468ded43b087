"""ModelDeployment: accepted specs are Progressing until the rollout controller has a version live."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelDeploymentSpec
from kubeloop.planning.core import KindPolicy, Summary


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    assert isinstance(spec, ModelDeploymentSpec)
    if status.get("stable"):
        return None
    target = f"version {spec.version}" if spec.version is not None else "a tracked version"
    return Summary(
        "Progressing", "Available", False, "NoStableVersion", f"nothing served yet; waiting for {target}"
    )


POLICY = KindPolicy(ModelDeploymentSpec, summarize, "Degraded", "Available")
