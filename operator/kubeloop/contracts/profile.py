"""profile.json: the reference distribution of a model's inputs and outputs, for drift monitoring.

Written by the trainer next to model.onnx (features from the training split, predictions from the
held-out test split); read by the monitor, which compares live request logs against it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubeloop.contracts.model import Task, Wire

PROFILE_FORMAT = 1


class NumericProfile(Wire):
    """Quantile bins of a numeric column. Live values below edges[0] or above edges[-1] belong to the
    first or last bin (the outer bins are open-ended); `sample` feeds two-sample tests such as KS."""

    kind: Literal["numeric"] = "numeric"
    edges: list[float]  # ascending, duplicates removed; len(counts) == max(len(edges) - 1, 1)
    counts: list[int]
    missing_rate: float
    mean: float | None = None
    std: float | None = None
    sample: list[float] = Field(default_factory=list)  # at most 1000 values, seeded draw


class CategoricalProfile(Wire):
    """Frequencies of a categorical column's values among its non-missing values."""

    kind: Literal["categorical"] = "categorical"
    frequencies: dict[str, float]  # the most frequent categories; the rest summed under OTHER
    counts: dict[str, int]
    missing_rate: float


OTHER = "__other__"  # categories beyond the recorded ones
FeatureProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class Profile(Wire):
    format: int = PROFILE_FORMAT
    task: Task
    rows: int  # rows the feature profiles were computed from
    features: dict[str, FeatureProfile]
    # Classification: the predicted labels (categorical); regression: the predicted values (numeric).
    prediction: FeatureProfile
    prediction_rows: int
