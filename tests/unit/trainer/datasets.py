"""Small tabular datasets, generated deterministically: numeric, integer, text and boolean columns,
with missing values, and a target that really depends on them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

FEATURES = ["tenure", "monthly", "calls", "plan", "autopay"]


def features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.gamma(2.0, 12.0, n).round(2),
            "monthly": rng.uniform(10, 120, n).round(2),
            "calls": rng.integers(0, 10, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]).astype(object),
            "autopay": rng.random(n) < 0.6,
        }
    )
    frame.loc[rng.choice(n, n // 20, replace=False), "tenure"] = np.nan
    frame.loc[rng.choice(n, n // 25, replace=False), "plan"] = None
    return frame


def _signal(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    tenure = frame["tenure"].fillna(24.0).to_numpy()
    plan = frame["plan"].map({"basic": 1.0, "pro": -0.5, "team": -1.0}).fillna(0.0).to_numpy()
    return (
        -0.05 * tenure + 0.02 * frame["monthly"].to_numpy() + 0.3 * frame["calls"].to_numpy()
        + plan - 0.8 * frame["autopay"].to_numpy() + rng.normal(0, 0.7, len(frame))
    )  # fmt: skip


def classification(n: int = 400, seed: int = 0, classes: int = 2) -> pd.DataFrame:
    """Target `churn`: "no"/"yes" (or "low"/"mid"/"high" with classes=3)."""
    frame = features(n, seed)
    signal = _signal(frame, seed)
    if classes == 2:
        frame["churn"] = np.where(signal > np.median(signal), "yes", "no")
    else:
        edges = np.quantile(signal, [0, 1 / 3, 2 / 3, 1])
        frame["churn"] = pd.cut(signal, edges, labels=["low", "mid", "high"], include_lowest=True).astype(str)
    return frame


def regression(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Target `spend`: a noisy function of the features."""
    frame = features(n, seed)
    frame["spend"] = 50.0 + 10.0 * _signal(frame, seed)
    return frame


def to_bytes(frame: pd.DataFrame, file_format: str) -> bytes:
    if file_format == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    return frame.to_csv(index=False).encode()
