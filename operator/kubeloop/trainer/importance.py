"""Permutation importance per original column: how much the test score drops when it is shuffled.

Computed on the whole exported pipeline (through onnxruntime: what is served, and fast), so a
categorical column counts once, not per one-hot output. Bounded: at most MAX_ROWS rows and
N_REPEATS shuffles per column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from kubeloop.api.v1alpha1.common import MetricName
from kubeloop.trainer.metrics import scorer

MAX_ROWS, N_REPEATS = 1000, 3


def importances(model: Any, x: pd.DataFrame, y: np.ndarray, regression: bool, seed: int) -> dict[str, float]:
    if len(x) == 0:
        return {}
    metric = MetricName.R2 if regression else MetricName.ACCURACY
    result = permutation_importance(
        model,
        x,
        y,
        scoring=scorer(metric),
        n_repeats=N_REPEATS,
        random_state=seed,
        max_samples=min(1.0, MAX_ROWS / len(x)),
        n_jobs=1,
    )
    means = result["importances_mean"]
    ranked = sorted(zip(x.columns, means, strict=True), key=lambda item: -float(item[1]))
    return {str(name): round(float(value), 6) for name, value in ranked}
