"""ModelMonitor: no verdict before its first run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import ModelMonitorSpec
from kubeloop.planning.core import KindPolicy, Summary


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    assert isinstance(spec, ModelMonitorSpec)
    if status.get("lastRun"):
        return None
    message = f"no monitoring run yet for deployment {spec.deployment}"
    return Summary("InsufficientData", "Healthy", None, "NoRunsYet", message)


POLICY = KindPolicy(ModelMonitorSpec, summarize, "Degraded", "Healthy")
