"""Converting rows to the model's tensors: the trainer's encodings, and a reason for every bad value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kubeloop.batch.rows import check, convert
from kubeloop.contracts.model import InputColumn
from kubeloop.serving.columns import InputSpec

FLOAT = InputSpec.of(InputColumn(name="charges", type="float"))
INTEGER = InputSpec.of(InputColumn(name="tenure", type="integer", nullable=False))
TEXT = InputSpec.of(InputColumn(name="contract", type="string", categorical=True))
BOOLEAN = InputSpec.of(InputColumn(name="senior", type="boolean", categorical=True))


@pytest.mark.parametrize(
    ("spec", "values", "expected"),
    [
        (FLOAT, pa.array(["1.5", None, " 2 ", "1e3", "nan"]), [1.5, math.nan, 2.0, 1000.0, math.nan]),
        (FLOAT, pa.array([1, 2, None], pa.int32()), [1.0, 2.0, math.nan]),
        (INTEGER, pa.array(["3", "4.0", "-2"]), [3, 4, -2]),
        (INTEGER, pa.array([3.0, 7.0]), [3, 7]),
        (TEXT, pa.array(["monthly", None, ""]), ["monthly", "", ""]),
        (TEXT, pa.array([3.0, 2.5, None]), ["3", "2.5", ""]),  # the trainer's text for numbers
        (TEXT, pa.array([True, False]), ["true", "false"]),
        (BOOLEAN, pa.array(["True", " no", "1", "Y", None]), ["true", "false", "true", "true", ""]),
        (BOOLEAN, pa.array([1, 0]), ["true", "false"]),
        (BOOLEAN, pa.array([True, None]), ["true", ""]),
    ],
)
def test_good_values_take_the_trainers_encoding(
    spec: InputSpec, values: pa.Array, expected: list[Any]
) -> None:
    column = convert(spec, values)
    assert not column.bad.any() and column.problems == {}
    assert column.values.dtype == np.dtype(spec.element if spec.element != "string" else object)
    got = column.values.tolist()
    assert [str(v) for v in got] == [str(v) for v in expected]


@pytest.mark.parametrize(
    ("spec", "values", "problem"),
    [
        (FLOAT, ["x"], "expected a number, got 'x'"),
        (FLOAT, ["1e400"], "number out of range for FP32: inf"),
        (FLOAT, ["-inf"], "number out of range for FP32: -inf"),
        (INTEGER, ["2.5"], "expected an integer, got 2.5"),
        (INTEGER, [None], "missing value: an integer column cannot be missing"),
        (INTEGER, ["1e30"], "number out of range for INT64: 1e+30"),
        (BOOLEAN, ["maybe"], "expected true or false, got 'maybe'"),
        (BOOLEAN, [2], "expected true or false, got 2"),
    ],
)
def test_bad_values_are_named(spec: InputSpec, values: list[Any], problem: str) -> None:
    column = convert(
        spec, pa.array(["1", *values]) if isinstance(values[0], str | None) else pa.array([1, *values])
    )
    assert column.bad.tolist() == [False, True] and column.problems == {1: problem}


def test_a_row_with_any_bad_value_is_rejected_whole_with_the_first_reason() -> None:
    table = pa.table({
        "charges": ["1.0", "x", "3.0", "4.0"], "tenure": ["1", "2", "z", None],
        "contract": ["a", "b", "c", "d"], "senior": ["true", "false", "maybe", "true"],
    })  # fmt: skip
    checked = check(table, {"charges": FLOAT, "tenure": INTEGER, "contract": TEXT, "senior": BOOLEAN})
    assert checked.keep.tolist() == [True, False, False, False]
    assert checked.reasons == {
        1: "charges: expected a number, got 'x'",
        2: "tenure: expected a number, got 'z'",
        3: "tenure: missing value: an integer column cannot be missing",
    }
    assert {name: feed.shape for name, feed in checked.feeds.items()} == dict.fromkeys(checked.feeds, (1, 1))
    assert checked.feeds["tenure"].dtype == np.int64 and checked.feeds["charges"].dtype == np.float32
