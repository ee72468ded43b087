"""One column's JSON values -> a numpy array of the element type the graph takes, or the first bad value.

Clean data takes the fast path: numpy converts a whole column in C, and only the dtype numpy
inferred is checked. Anything unusual (nulls, mixed types) falls to a per-value path that exists
to find the first bad value and say what is wrong with it, so the common case has no per-row
Python work. One leniency follows from that: JSON true/false among numbers reads as 1/0 (numpy
cannot tell them from integers without a per-value pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kubeloop.contracts.model import ColumnKind, InputColumn

# onnxruntime's type names for the element types a scikit-learn pipeline's inputs can have.
ELEMENTS = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "string",
    "tensor(bool)": "bool",
}
# What the trainer exports each column kind as (contracts/model.py InputColumn): used without a graph.
DEFAULT_ELEMENT: dict[ColumnKind, str] = {
    "float": "float32",
    "integer": "int64",
    "string": "string",
    "boolean": "string",
}
# V2 datatypes a client may send for each element type (numbers convert between numeric types).
_NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
ACCEPTED_DATATYPES = {
    "float32": _NUMERIC,
    "float64": _NUMERIC,
    "int64": _NUMERIC,
    "int32": _NUMERIC,
    "string": {"BYTES"},
    "bool": {"BOOL"},
}
V2_DATATYPE = {
    "float32": "FP32",
    "float64": "FP64",
    "int64": "INT64",
    "int32": "INT32",
    "string": "BYTES",
    "bool": "BOOL",
}
# The trainer's encodings (contracts/model.py InputColumn): a missing category is "", and a boolean
# column is the category "true" or "false", read from the same spellings the trainer accepts.
MISSING_TEXT = ""
_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})
_INT_LIMITS = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}


class ColumnProblem(Exception):
    """One column's values are unusable; `row` is the first offending row when there is one."""

    def __init__(self, problem: str, row: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.row = problem, row


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One graph input: the card's column plus the element type the graph really takes."""

    name: str
    kind: ColumnKind
    element: str  # a value of ELEMENTS
    nullable: bool = True
    categorical: bool = False
    datatypes: frozenset[str] = frozenset()  # V2 datatypes accepted for this input

    @classmethod
    def of(cls, column: InputColumn, element: str | None = None) -> InputSpec:
        chosen = element or DEFAULT_ELEMENT[column.type]
        # A boolean column is text categories in the graph; BOOL tensors of true/false fit it too.
        extra = {"BOOL"} if column.type == "boolean" else set()
        accepted = frozenset(ACCEPTED_DATATYPES[chosen] | extra)
        return cls(column.name, column.type, chosen, column.nullable, column.categorical, accepted)

    @property
    def datatype(self) -> str:
        return V2_DATATYPE[self.element]


def column_array(spec: InputSpec, values: list[Any]) -> np.ndarray:
    """Convert one column's JSON values to a flat array of the graph's element type."""
    if spec.element == "string":
        return _strings(spec, values)
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):  # ragged nesting or values numpy cannot hold
        raise ColumnProblem("values must be a flat list (or nested evenly by shape)") from None
    if spec.element in ("float32", "float64"):
        return _floats(spec, arr, values)
    if spec.element in _INT_LIMITS:
        return _integers(spec, arr, values)
    return _booleans(arr, values)


def _floats(spec: InputSpec, arr: np.ndarray, values: list[Any]) -> np.ndarray:
    kind = arr.dtype.kind
    with np.errstate(over="ignore"):  # overflow is reported below, as a bad value
        if kind in "iuf" or (kind == "b" and spec.kind == "boolean"):
            out = arr.reshape(-1).astype(spec.element)
        else:
            out = np.array(
                [_float_value(spec, v, i) for i, v in enumerate(_flat(values))], dtype=spec.element
            )
    if kind in {"f", "O"}:
        # JSON cannot carry NaN or infinity, so an infinity here is a number too big for the element type.
        bad = np.flatnonzero(np.isinf(out))
        if bad.size:
            raise ColumnProblem(f"number out of range for {V2_DATATYPE[spec.element]}", int(bad[0]))
    return out


def _float_value(spec: InputSpec, value: Any, row: int) -> float:
    if value is None:
        if not spec.nullable:
            raise ColumnProblem("null is not allowed: this column cannot be missing", row)
        return float("nan")  # the pipeline imputes it
    if isinstance(value, bool) and spec.kind != "boolean":
        raise ColumnProblem("expected a number, got true/false", row)
    if not isinstance(value, int | float):
        raise ColumnProblem(f"expected a number, got {_json_type(value)}", row)
    return float(value)


def _integers(spec: InputSpec, arr: np.ndarray, values: list[Any]) -> np.ndarray:
    kind = arr.dtype.kind
    low, high = _INT_LIMITS[spec.element]
    if kind == "b" and spec.kind == "boolean":
        return arr.reshape(-1).astype(spec.element)
    if kind in "iuf":
        flat = arr.reshape(-1)
        if kind == "f":
            fractional = np.flatnonzero(flat != np.floor(flat))
            if fractional.size:
                row = int(fractional[0])
                raise ColumnProblem(f"expected an integer, got {flat[row].item()!r}", row)
        outside = np.flatnonzero((flat < low) | (flat > high))
        if outside.size:
            raise ColumnProblem(f"integer out of range for {V2_DATATYPE[spec.element]}", int(outside[0]))
        return flat.astype(spec.element)
    for row, value in enumerate(_flat(values)):
        if value is None:
            raise ColumnProblem("null is not allowed: an integer input cannot be missing", row)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ColumnProblem(f"expected an integer, got {_json_type(value)}", row)
        if not float(value).is_integer() or not low <= value <= high:
            raise ColumnProblem(f"expected an integer within {V2_DATATYPE[spec.element]}, got {value!r}", row)
    raise ColumnProblem("values must be integers")  # unreachable for JSON input; numpy said otherwise


def _booleans(arr: np.ndarray, values: list[Any]) -> np.ndarray:
    if arr.dtype.kind == "b":
        return arr.reshape(-1)
    for row, value in enumerate(_flat(values)):
        if not isinstance(value, bool):
            raise ColumnProblem(f"expected true or false, got {_json_type(value)}", row)
    raise ColumnProblem("expected true or false")


def _strings(spec: InputSpec, values: list[Any]) -> np.ndarray:
    """Text categories, spelled as the trainer spelled them (contracts/model.py InputColumn)."""
    flat = _flat(values)
    # numpy would quietly turn [1, "a"] into ["1", "a"]: check the types first (one quick pass).
    if spec.kind != "boolean" and all(type(v) is str for v in flat):
        return np.array(flat, dtype=np.str_)
    if spec.kind == "boolean" and all(type(v) is bool for v in flat):
        return np.where(np.array(flat, dtype=bool), "true", "false")
    out: list[str] = []
    for row, value in enumerate(flat):
        if value is None:
            if not spec.nullable:
                raise ColumnProblem("null is not allowed: this column cannot be missing", row)
            out.append(MISSING_TEXT)
        elif isinstance(value, str | int | float):
            out.append(bool_text(value) if spec.kind == "boolean" else category_text(value))
        else:
            raise ColumnProblem(f"expected a string, got {_json_type(value)}", row)
    return np.array(out, dtype=np.str_)


def category_text(value: str | int | float) -> str:
    """A category's text as the trainer wrote it: true/false for booleans, 3.0 -> "3", else str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def bool_text(value: str | int | float) -> str:
    """A boolean column's category: "true"/"false" for anything that reads as one, else the text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if isinstance(value, int | float) and value in (0, 1):
        text = "1" if value == 1 else "0"
    if text in _TRUE:
        return "true"
    return "false" if text in _FALSE else str(value)


def _flat(values: list[Any]) -> list[Any]:
    if values and isinstance(values[0], list):
        flat: list[Any] = []
        for item in values:
            flat.extend(_flat(item) if isinstance(item, list) else [item])
        return flat
    return values


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "an object" if isinstance(value, dict) else "a list"
