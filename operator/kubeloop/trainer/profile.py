"""profile.json: reference distributions for drift monitoring (see contracts/profile.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kubeloop.contracts.model import Task
from kubeloop.contracts.profile import OTHER, CategoricalProfile, FeatureProfile, NumericProfile, Profile
from kubeloop.trainer.columns import MISSING_TEXT, Column, to_number

BINS, SAMPLE_SIZE, MAX_CATEGORIES = 10, 1000, 100


def numeric_profile(values: np.ndarray, seed: int) -> NumericProfile:
    values = np.asarray(values, dtype=np.float64)
    present = values[np.isfinite(values)]
    missing_rate = (len(values) - len(present)) / len(values) if len(values) else 0.0
    if not len(present):
        return NumericProfile(edges=[], counts=[], missing_rate=missing_rate)
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, BINS + 1)))
    if len(edges) == 1:  # a constant column: one bin holding everything
        counts = np.array([len(present)])
    else:
        counts, _ = np.histogram(present, bins=edges)
    rng = np.random.default_rng(seed)
    sample = rng.choice(present, size=min(SAMPLE_SIZE, len(present)), replace=False)
    return NumericProfile(
        edges=[float(e) for e in edges],
        counts=[int(c) for c in counts],
        missing_rate=missing_rate,
        mean=float(present.mean()),
        std=float(present.std()),
        sample=[float(v) for v in sample],
    )


def categorical_profile(values: pd.Series) -> CategoricalProfile:
    text = values.astype(object)
    present = text[(text != MISSING_TEXT) & text.notna()].astype(str)
    missing_rate = (len(text) - len(present)) / len(text) if len(text) else 0.0
    counts = present.value_counts()
    kept = counts.iloc[:MAX_CATEGORIES]
    recorded = {str(k): int(v) for k, v in kept.items()}
    if len(counts) > MAX_CATEGORIES:
        recorded[OTHER] = int(counts.iloc[MAX_CATEGORIES:].sum())
    total = max(len(present), 1)
    return CategoricalProfile(
        frequencies={k: v / total for k, v in recorded.items()}, counts=recorded, missing_rate=missing_rate
    )


def feature_profile(column: Column, raw: pd.Series, encoded: pd.Series, seed: int) -> FeatureProfile:
    """Numbers as the dataset holds them (not their float32 encoding), categories as the model sees
    them (booleans as "true"/"false"): the forms live requests arrive in."""
    if column.categorical:
        return categorical_profile(encoded)
    return numeric_profile(to_number(raw).to_numpy(np.float64), seed)


def build_profile(
    columns: list[Column],
    *,
    raw: pd.DataFrame,
    train: pd.DataFrame,
    predictions: np.ndarray,
    task: Task,
    seed: int,
) -> Profile:
    """Features from the training split (`raw`: the dataset's rows, `train`: encoded); predictions
    from the test split."""
    prediction: FeatureProfile = (
        numeric_profile(predictions.astype(np.float64), seed)
        if task == "regression"
        else categorical_profile(pd.Series(predictions).map(str))
    )
    return Profile(
        task=task,
        rows=len(train),
        features={
            c.name: feature_profile(c, raw.loc[train.index, c.name], train[c.name], seed) for c in columns
        },
        prediction=prediction,
        prediction_rows=len(predictions),
    )
