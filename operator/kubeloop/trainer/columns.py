"""How a dataset column becomes a model input, the same way for scikit-learn and for ONNX.

Kinds: float (float32, NaN when missing), integer (int64, never missing), string and boolean (text
categories; booleans as "true"/"false"; missing is ""). Training and serving share these encodings,
so the exported graph sees exactly what the fitted pipeline saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kubeloop.api.v1alpha1.common import ColumnType
from kubeloop.contracts.model import ColumnKind

MISSING_TEXT = ""  # how a missing category reaches the pipeline and the ONNX graph
_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind

    @property
    def categorical(self) -> bool:
        return self.kind in ("string", "boolean")


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain NumPy dtypes: nullable extension types (parquet, pandas' str) become float/object."""
    columns: dict[str, pd.Series] = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series.dtype) and not isinstance(series.dtype, np.dtype):
            series = series.astype(object).where(series.notna(), None)
        elif pd.api.types.is_integer_dtype(series.dtype) and not isinstance(series.dtype, np.dtype):
            series = series.astype("int64") if not series.isna().any() else series.astype("float64")
        elif pd.api.types.is_float_dtype(series.dtype):
            series = series.astype("float64")
        elif not isinstance(series.dtype, np.dtype):
            series = series.astype(object).where(series.notna(), None)
        columns[str(name)] = series
    return pd.DataFrame(columns, index=frame.index)


def _is_bool_value(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def infer_kind(series: pd.Series) -> ColumnKind:
    """The kind the data itself suggests (a declared type takes precedence, see `column_kind`)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "integer"
    if pd.api.types.is_float_dtype(series.dtype):
        return "float"
    present = series.dropna()
    if len(present) and all(_is_bool_value(v) for v in present):
        return "boolean"
    return "string"


def column_kind(series: pd.Series, declared: ColumnType | None) -> ColumnKind:
    """Declared type first; an integer column with gaps is fed as float (int64 has no NaN)."""
    kind: ColumnKind = declared.value if declared is not None else infer_kind(series)  # type: ignore[assignment]
    if kind == "integer" and series.isna().any():
        return "float"
    return kind


def to_number(series: pd.Series) -> pd.Series:
    """Numeric values as float64; anything that is not a number becomes NaN."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    return pd.to_numeric(series.map(lambda v: None if _is_bool_value(v) else v), errors="coerce")


def to_bool_text(value: Any) -> str | None:
    """ "true"/"false" for anything that reads as a boolean, None for missing, else the value as text."""
    if _is_missing(value):
        return None
    if _is_bool_value(value):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if isinstance(value, int | float | np.integer | np.floating) and float(value) in (0.0, 1.0):
        text = "1" if float(value) == 1.0 else "0"
    if text in _TRUE:
        return "true"
    return "false" if text in _FALSE else str(value)


def to_category(value: Any) -> str | None:
    """The text form of a category; None for missing. Integral floats read as integers (1.0 -> "1")."""
    if _is_missing(value):
        return None
    if _is_bool_value(value):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def encode(series: pd.Series, kind: ColumnKind) -> pd.Series:
    """The column as the pipeline (and the ONNX graph) receives it."""
    if kind == "float":
        return to_number(series).astype(np.float32)
    if kind == "integer":
        return to_number(series).astype(np.int64)
    if kind == "boolean" and pd.api.types.is_bool_dtype(series.dtype):  # fast paths: no per-value calls
        return pd.Series(np.where(series.to_numpy(bool), "true", "false"), index=series.index, dtype=object)
    if kind == "string" and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return series.astype(object).where(series.notna(), MISSING_TEXT)
    convert = to_bool_text if kind == "boolean" else to_category
    return series.map(lambda v: convert(v) or MISSING_TEXT).astype(object)


def encode_frame(frame: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    return pd.DataFrame({c.name: encode(frame[c.name], c.kind) for c in columns}, index=frame.index)


def onnx_feeds(encoded: pd.DataFrame, columns: list[Column]) -> dict[str, np.ndarray]:
    """One [N, 1] tensor per column, typed as the graph's inputs."""
    dtypes = {"float": np.float32, "integer": np.int64}
    return {c.name: encoded[[c.name]].to_numpy(dtypes.get(c.kind, object)) for c in columns}


def _json_value(value: Any) -> Any:
    if _is_missing(value):
        return None
    if isinstance(value, np.float32):
        return float(str(value))  # the shortest decimal that reads back as the same float32
    return value.item() if isinstance(value, np.generic) else value


def json_values(encoded: pd.Series) -> list[Any]:
    """Plain JSON values of an encoded column: NaN becomes null, NumPy scalars become Python ones."""
    return [_json_value(v) for v in encoded.to_numpy()]


def encode_target(series: pd.Series, regression: bool) -> np.ndarray:
    """Regression: float64 values. Classification: int64 labels for numbers, text labels otherwise."""
    if regression:
        return np.asarray(to_number(series), dtype=np.float64)
    kind = infer_kind(series)
    if kind == "boolean":
        return np.asarray(series.map(to_bool_text), dtype=object)
    if kind in ("integer", "float"):
        return np.asarray(to_number(series), dtype=np.int64)
    return np.asarray(series.map(to_category), dtype=object)
