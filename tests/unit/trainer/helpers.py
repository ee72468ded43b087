"""Shared by the trainer tests: specs, in-memory preparation, and golden replay as a server does it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kubeloop.contracts.model import DatasetRef, Golden, Signature
from kubeloop.trainer.columns import normalize
from kubeloop.trainer.dataset import Dataset
from kubeloop.trainer.prepare import Prepared, encode_and_split, parse_spec
from kubeloop.trainer.validation import validate

FAST_PARAMS: dict[str, dict[str, Any]] = {
    # Few trees keep the tests fast; fidelity does not depend on the count.
    "RandomForestClassifier": {"n_estimators": 15, "max_depth": 6},
    "RandomForestRegressor": {"n_estimators": 15, "max_depth": 6},
    "GradientBoostingClassifier": {"n_estimators": 20},
    "GradientBoostingRegressor": {"n_estimators": 20},
    "HistGradientBoostingClassifier": {"max_iter": 20},
    "HistGradientBoostingRegressor": {"max_iter": 20},
}


def spec_dict(
    estimator: str, target: str, uri: str = "file:///in-memory.csv", file_format: str = "csv", **extra: Any
) -> dict[str, Any]:
    algorithm = {"estimator": estimator, "params": FAST_PARAMS.get(estimator, {})}
    algorithm |= extra.pop("algorithm", {})
    dataset = {"uri": uri, "format": file_format, "target": target} | extra.pop("dataset", {})
    return {"model": "churn", "dataset": dataset, "algorithm": algorithm} | extra


def prepared_in_memory(frame: pd.DataFrame, spec: dict[str, Any]) -> Prepared:
    parsed, estimator = parse_spec(spec)
    data = normalize(frame)
    ref = DatasetRef(uri=parsed.dataset.uri, sha256="0" * 64, rows=len(data), columns=len(data.columns))
    report = validate(data, parsed.dataset, estimator.is_regressor)
    assert report.ok, report.violations
    return encode_and_split(parsed, estimator, Dataset(data, ref), report)


def golden_feeds(signature: Signature, golden: Golden) -> dict[str, np.ndarray]:
    """The golden inputs (JSON) as ONNX tensors, by the signature's documented encoding."""
    feeds = {}
    for column in signature.inputs:
        values = golden.inputs[column.name]
        if column.type == "float":
            feeds[column.name] = np.array([np.nan if v is None else v for v in values], np.float32)
        elif column.type == "integer":
            feeds[column.name] = np.array(values, np.int64)
        else:
            feeds[column.name] = np.array(["" if v is None else str(v) for v in values], object)
        feeds[column.name] = feeds[column.name].reshape(-1, 1)
    return feeds
