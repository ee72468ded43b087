"""The compact results Jobs leave in their termination message (<= 4 KiB); full results are in the store."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kubeloop.contracts.model import DatasetRef, StoredFile, Wire
from kubeloop.contracts.tasks import RESULT_LIMIT, termination_log_path

Outcome = Literal["Succeeded", "DataInvalid", "Failed"]


class Violation(Wire):
    """One broken validation rule: which rule, on which column, how many offending values."""

    # requiredColumn | type | maxMissingFraction | range | allowedCategories | minRows | labelBalance | target
    rule: str
    column: str | None = None
    count: int = 0
    message: str


class TrainingResult(Wire):
    outcome: Outcome
    reason: str  # CamelCase, for the condition
    message: str
    dataset: DatasetRef | None = None
    violations: list[Violation] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    artifact: StoredFile | None = None  # model.onnx
    card: str | None = None  # location of model.json


class TrialResult(Wire):
    """One search trial. Also what a trial pod reports when the run cannot go on (DataInvalid, Failed)."""

    index: int
    params: dict[str, Any]
    score: float | None = None  # mean cross-validated score of `metric` in its own units; None if failed
    metric: str
    outcome: Outcome
    message: str = ""
    reason: str | None = None  # CamelCase cause when not Succeeded (e.g. DataValidationFailed)
    violations: list[Violation] = Field(default_factory=list)  # when outcome is DataInvalid


class ValidationResult(Wire):
    """The ModelVersion validation Job's verdict on an artifact."""

    ok: bool
    reason: (
        str  # Validated | DigestMismatch | LoadFailed | GoldenMismatch | ArtifactMissing | StoreUnavailable
    )
    message: str
    max_abs_diff: float | None = None
    rows: int = 0


def write_result(result: Wire) -> str:
    """Write `result` as the termination message, trimmed to fit: lists shrink before failing."""
    text = result.to_json()
    if len(text.encode()) > RESULT_LIMIT and isinstance(result, TrainingResult | TrialResult):
        kept = result.model_copy(
            update={"violations": result.violations[:5], "message": result.message[:500]}
        )
        text = kept.to_json()
    text = text.encode()[:RESULT_LIMIT].decode("utf-8", "ignore")
    with open(termination_log_path(), "w") as handle:
        handle.write(text)
    return text
