"""TrainingRun: what the operator core decides before the training controller takes over."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kubeloop.api.v1alpha1 import TrainingRunSpec
from kubeloop.planning.core import KindPolicy, Summary


def extra_checks(spec: BaseModel) -> list[str]:
    assert isinstance(spec, TrainingRunSpec)
    search = spec.algorithm.search
    if search is None:
        return []
    both = sorted(set(spec.algorithm.params) & set(search.space))
    # A parameter both fixed and searched is ambiguous: which one would win?
    return [
        f"spec.algorithm.params.{name}: also searched in spec.algorithm.search.space; keep one"
        for name in both
    ]


def summarize(spec: BaseModel, status: dict[str, Any]) -> Summary | None:
    if status.get("startTime"):
        return None
    return Summary("Pending", "Succeeded", None, "Accepted", "spec accepted; training has not started")


POLICY = KindPolicy(TrainingRunSpec, summarize, "Failed", "Succeeded", extra_checks)
