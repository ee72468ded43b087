"""A chunk of rows -> the model's input tensors, and the rows that cannot be scored, each with why.

The encodings are the trainer's (contracts/model.py InputColumn): float columns as float32 with
NaN when missing, integers as int64 and never missing, text categories as text with "" when
missing, booleans as the categories "true"/"false". Clean columns take one vectorized conversion;
only a column that fails it is examined value by value, to find and name the bad rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kubeloop.serving.columns import MISSING_TEXT, V2_DATATYPE, InputSpec

NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(inf|infinity|nan)$"
TRUE_TEXT = ["true", "1", "yes", "t", "y"]
FALSE_TEXT = ["false", "0", "no", "f", "n"]
_LIMITS = {
    "float32": float(np.finfo(np.float32).max),
    "float64": float(np.finfo(np.float64).max),
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
}


@dataclass
class Column:
    """One input converted: values for every row (placeholders where bad) and the bad rows' problems."""

    values: np.ndarray
    bad: np.ndarray  # bool, per row
    problems: dict[int, str]  # row -> what is wrong (only bad rows)


@dataclass
class Checked:
    feeds: dict[str, np.ndarray]  # the good rows, (rows, 1) per input
    keep: np.ndarray  # bool, per row of the chunk
    reasons: dict[int, str]  # row -> "column: problem", for every rejected row

    @property
    def rejected(self) -> int:
        return len(self.reasons)


def check(table: pa.Table, specs: dict[str, InputSpec]) -> Checked:
    """Convert every model input of `table`; a row with any bad value is rejected as a whole."""
    rows = table.num_rows
    bad = np.zeros(rows, dtype=bool)
    reasons: dict[int, str] = {}
    columns: dict[str, np.ndarray] = {}
    for name, spec in specs.items():
        column = convert(spec, table.column(name))
        columns[name] = column.values
        if column.problems:
            bad |= column.bad
            for row, problem in column.problems.items():
                reasons.setdefault(row, f"{name}: {problem}")
    keep = ~bad
    if bad.any():
        feeds = {name: values[keep].reshape(-1, 1) for name, values in columns.items()}
    else:
        feeds = {name: values.reshape(-1, 1) for name, values in columns.items()}
    return Checked(feeds, keep, reasons)


def convert(spec: InputSpec, data: pa.ChunkedArray) -> Column:
    array = data.combine_chunks() if isinstance(data, pa.ChunkedArray) else data
    if spec.element in ("float32", "float64", "int64", "int32"):
        return _numbers(spec, array)
    texts = _booleans(spec, array) if spec.kind == "boolean" else _categories(spec, array)
    if spec.element == "bool":
        return Column(texts.values == "true", texts.bad, texts.problems)
    return texts


# --- numbers ---------------------------------------------------------------------------------------


def _numbers(spec: InputSpec, array: pa.Array) -> Column:
    integral = spec.kind == "integer" or spec.element in ("int64", "int32")
    kind = array.type
    problems: dict[int, str] = {}
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        floats = _parse_numbers(array, problems)
    elif (pa.types.is_boolean(kind) and spec.kind == "boolean") or pa.types.is_decimal(kind):
        floats = pc.cast(array, pa.float64(), safe=False)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        floats = array
    else:
        floats = pa.nulls(len(array), pa.float64())
        _mark(problems, array.is_valid(), f"expected a number, got a value of type {kind}")
    values = np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)  # nulls -> NaN
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        limit = _LIMITS[spec.element]
        if isinstance(limit, tuple):
            outside = (values < limit[0]) | (values > limit[1])
        else:
            outside = np.abs(values) > limit  # infinities too
        fractional = (values != np.floor(values)) & ~outside & ~missing if integral else None
    _name_rows(problems, outside, lambda row: f"number out of range for {V2_DATATYPE[spec.element]}: "
               f"{float(values[row])!r}")  # fmt: skip
    if fractional is not None:
        _name_rows(problems, fractional, lambda row: f"expected an integer, got {float(values[row])!r}")
    if integral or not spec.nullable:
        what = "an integer column" if integral else "this column"
        _name_rows(problems, missing, lambda row: f"missing value: {what} cannot be missing")
    bad = np.zeros(len(values), dtype=bool)
    if problems:
        bad[list(problems)] = True
        values = np.where(bad, 0.0, values)  # a placeholder the graph accepts; the row is not scored
    return Column(values.astype(spec.element), bad, problems)


def _name_rows(problems: dict[int, str], rows: np.ndarray, describe: Callable[[int], str]) -> None:
    if rows.any():
        for row in np.flatnonzero(rows):
            problems.setdefault(int(row), describe(int(row)))


def _parse_numbers(array: pa.Array, problems: dict[int, str]) -> pa.Array:
    """Text to float64: one cast when every value is a number; else the bad values are named."""
    try:
        return pc.cast(array, pa.float64())
    except pa.ArrowInvalid:
        pass
    trimmed = pc.utf8_trim_whitespace(array)
    good = pc.match_substring_regex(pc.utf8_lower(trimmed), NUMBER)
    empty = pc.equal(trimmed, "")
    for row in np.flatnonzero(_true(pc.and_(pc.invert(good), pc.invert(empty)))):
        problems[int(row)] = f"expected a number, got {_show(array[int(row)].as_py())}"
    return pc.cast(pc.if_else(good, trimmed, pa.scalar(None, pa.string())), pa.float64())


# --- text ------------------------------------------------------------------------------------------


def _categories(spec: InputSpec, array: pa.Array) -> Column:
    """Text categories as the trainer spelled them: integral numbers without ".0", booleans true/false."""
    kind = array.type
    problems: dict[int, str] = {}
    if pa.types.is_boolean(kind):
        text = pc.if_else(array, "true", "false")
    elif pa.types.is_floating(kind):
        integral = pc.and_(pc.equal(pc.floor(array), array), pc.less(pc.abs(array), 2.0**53))
        as_int = pc.cast(pc.if_else(integral, array, None), pa.int64(), safe=False)
        text = pc.if_else(integral, pc.cast(as_int, pa.string()), pc.cast(array, pa.string()))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.cast(array, pa.string())
    else:
        try:
            text = pc.cast(array, pa.string())
        except pa.ArrowNotImplementedError:
            text = pa.nulls(len(array), pa.string())
            _mark(problems, array.is_valid(), f"expected text, got a value of type {kind}")
    return _finish_text(spec, text, problems)


def _booleans(spec: InputSpec, array: pa.Array) -> Column:
    """A boolean column: "true"/"false" from any spelling the trainer reads as one; anything else is bad."""
    kind = array.type
    problems: dict[int, str] = {}
    if pa.types.is_boolean(kind):
        return _finish_text(spec, pc.if_else(array, "true", "false"), problems)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        words = pc.cast(pc.cast(array, pa.float64()), pa.string())  # 1.0 -> "1"
    else:
        try:
            words = pc.cast(array, pa.string())
        except pa.ArrowNotImplementedError:
            words = pa.nulls(len(array), pa.string())
            _mark(problems, array.is_valid(), f"expected true or false, got a value of type {kind}")
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(words))
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_TEXT))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_TEXT))
    for row in np.flatnonzero(_true(pc.and_(pc.is_valid(words), pc.invert(pc.or_(is_true, is_false))))):
        problems[int(row)] = f"expected true or false, got {_show(array[int(row)].as_py())}"
    text = pc.if_else(is_true, "true", pc.if_else(is_false, "false", pa.scalar(None, pa.string())))
    text = pc.if_else(pc.is_valid(words), text, pa.scalar(None, pa.string()))
    return _finish_text(spec, text, problems)


def _finish_text(spec: InputSpec, text: pa.Array, problems: dict[int, str]) -> Column:
    if not spec.nullable:
        _mark(problems, pc.is_null(text), "missing value: this column cannot be missing")
    filled = pc.fill_null(text, MISSING_TEXT)
    values = np.asarray(filled.to_numpy(zero_copy_only=False), dtype=object)
    bad = np.zeros(len(values), dtype=bool)
    if problems:
        bad[list(problems)] = True
        values[bad] = MISSING_TEXT
    return Column(values, bad, problems)


# --- helpers ---------------------------------------------------------------------------------------


def _true(mask: pa.Array) -> np.ndarray:
    """A boolean array (nulls as False) as numpy."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _mark(problems: dict[int, str], mask: pa.Array, problem: str) -> None:
    _mark_rows(problems, _true(mask), problem)


def _mark_rows(problems: dict[int, str], rows: np.ndarray, problem: str) -> None:
    for row in np.flatnonzero(rows):
        problems.setdefault(int(row), problem)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
