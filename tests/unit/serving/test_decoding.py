"""Request decoding against a hand-made signature: right arrays for good input, a named 4xx for bad."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from kubeloop.contracts.model import InputColumn
from kubeloop.serving.columns import InputSpec
from kubeloop.serving.decoding import BadInput, decode_records, decode_v2, parse_json

COLUMNS = [
    InputColumn(name="age", type="integer", nullable=False),
    InputColumn(name="income", type="float"),
    InputColumn(name="plan", type="string", categorical=True),
    InputColumn(name="senior", type="boolean", categorical=True),
]
SPECS = {column.name: InputSpec.of(column) for column in COLUMNS}
ROWS = [
    {"age": 30, "income": 1200.5, "plan": "basic", "senior": False},
    {"age": 71, "income": None, "plan": "", "senior": True},
]


def v2(rows: list[dict[str, Any]]) -> dict[str, Any]:
    types = {"age": "INT64", "income": "FP32", "plan": "BYTES", "senior": "BOOL"}
    return {
        "inputs": [
            {"name": name, "shape": [len(rows), 1], "datatype": types[name], "data": [r[name] for r in rows]}
            for name in SPECS
        ]
    }


def test_columnar_and_records_decode_to_the_same_arrays() -> None:
    columnar = decode_v2(v2(ROWS), SPECS, 100)
    records = decode_records({"instances": ROWS}, SPECS, 100)
    assert columnar.rows == records.rows == 2
    for name in SPECS:
        assert columnar.feeds[name].shape == (2, 1)
        np.testing.assert_array_equal(columnar.feeds[name], records.feeds[name])
    feeds = columnar.feeds
    assert feeds["age"].dtype == np.int64 and feeds["income"].dtype == np.float32
    assert feeds["income"][0, 0] == np.float32(1200.5) and np.isnan(feeds["income"][1, 0])  # null: imputed
    assert feeds["plan"].ravel().tolist() == ["basic", ""]
    assert feeds["senior"].ravel().tolist() == ["false", "true"]  # booleans are categories "true"/"false"


def test_v2_accepts_flat_and_nested_data_and_echoes_id_and_outputs() -> None:
    body = v2(ROWS)
    for tensor in body["inputs"]:
        tensor["shape"] = [2]
    body["inputs"][1]["data"] = [[1.0], [2.0]]
    body["id"] = "req-1"
    body["outputs"] = [{"name": "label"}]
    batch = decode_v2(body, SPECS, 100)
    assert batch.request_id == "req-1" and batch.outputs == ["label"]
    assert batch.feeds["income"].ravel().tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("income", [1, 2.5], [1.0, 2.5]),  # integers in a float column
        ("age", [3.0, 4], [3, 4]),  # integral floats in an integer column
        ("plan", [3, 3.0, "x", None], ["3", "3", "x", ""]),  # categories spelled as the trainer did
        ("senior", ["yes", "0", 1, "maybe"], ["true", "false", "true", "maybe"]),  # unseen: passed on
    ],
)
def test_values_convert_like_the_trainer_encoded_them(
    column: str, values: list[Any], expected: list[Any]
) -> None:
    rows = [{**ROWS[0], column: value} for value in values]
    batch = decode_records({"instances": rows}, SPECS, 100)
    assert batch.feeds[column].ravel().tolist() == expected


def bad(**changes: Any) -> dict[str, Any]:
    return {"instances": [ROWS[0], {**ROWS[1], **changes}]}


def without(name: str) -> dict[str, Any]:
    return {"instances": [{k: v for k, v in ROWS[0].items() if k != name}]}


RECORD_CASES = [
    (bad(income="12"), 400, "income", "instances[1].income: expected a number, got a string"),
    ({"instances": [{**ROWS[0], "income": True}]}, 400, "income", "expected a number, got true/false"),
    (bad(income=1e39), 400, "income", "out of range for FP32"),
    (bad(age=2.5), 400, "age", "expected an integer, got 2.5"),
    (bad(age=None), 400, "age", "null is not allowed"),
    (bad(age=2**64), 400, "age", "age"),
    (bad(age="30"), 400, "age", "expected an integer"),
    (bad(plan={"a": 1}), 400, "plan", "expected a string, got an object"),
    (bad(senior=[True]), 400, "senior", "got a list"),
    (bad(senior=[None, None]), 400, "senior", "instances[1].senior: expected a string, got a list"),
    (bad(age=[1, 2]), 400, "age", "instances[1].age: expected a single value, got a list"),
    (bad(income=[1.0, 2.0]), 400, "income", "instances[1].income: expected a single value, got a list"),
    (without("plan"), 400, "plan", "missing column 'plan'"),
    ({"instances": [{**ROWS[0], "color": "red"}]}, 400, "color", "unknown column 'color'"),
    ({"instances": []}, 400, "instances", "empty batch"),
    ({"instances": [ROWS[0]] * 11}, 413, "instances", "11 rows is over the limit of 10"),
    ({"instances": ["not a record"]}, 400, "instances[0]", "must be an object"),
    ({"rows": []}, 400, "instances", '{"instances"'),
    ([1, 2], 400, "instances", '{"instances"'),
]


@pytest.mark.parametrize(("payload", "status", "field", "fragment"), RECORD_CASES)
def test_bad_records_name_the_column_and_the_problem(
    payload: Any, status: int, field: str, fragment: str
) -> None:
    with pytest.raises(BadInput) as raised:
        decode_records(payload, SPECS, max_rows=10)
    assert (raised.value.status, raised.value.field) == (status, field)
    assert fragment in raised.value.message


def tensor(column: str, **changes: Any) -> dict[str, Any]:
    body = v2(ROWS)
    for item in body["inputs"]:
        if item["name"] == column:
            item.update(changes)
    return body


V2_CASES = [
    (tensor("income", data=[1.0, "x"]), 400, "income", "input 'income': expected a number, got a string"),
    (tensor("income", datatype="BYTES"), 400, "income", "datatype 'BYTES' does not fit a float column"),
    (tensor("plan", datatype="FP32"), 400, "plan", "send BYTES"),
    (tensor("plan", datatype={"not": "hashable"}), 400, "plan", "does not fit"),
    (tensor("income", shape=[3]), 400, "income", "has 3 rows but the other inputs have 2"),
    (tensor("age", shape=[2, 2]), 400, "age", "shape must be [rows] or [rows, 1]"),
    (tensor("age", shape="2"), 400, "age", "shape must be"),
    (tensor("age", data=[1, 2, 3]), 400, "age", "shape says 2 values, data has 3"),
    (tensor("age", data=[[1], [2, 3]]), 400, "age", "flat list"),
    (tensor("age", data="1,2"), 400, "age", "data must be a list"),
    (
        tensor("age", name="height"),
        400,
        "height",
        "unknown column; the model takes: age, income, plan, senior",
    ),
    ({"inputs": v2(ROWS)["inputs"][1:]}, 400, "age", "missing input column(s): age"),
    ({"inputs": v2(ROWS)["inputs"] + v2(ROWS)["inputs"][:1]}, 400, "age", "given twice"),
    ({"inputs": []}, 400, "inputs", "non-empty list"),
    ({"inputs": [1]}, 400, "inputs[0]", "must be an object"),
    ({"inputs": [{"name": 3}]}, 400, "inputs[0].name", "must be a string"),
    ({**v2(ROWS), "id": 5}, 400, "id", "'id' must be a string"),
    ({**v2(ROWS), "outputs": ["label"]}, 400, "outputs", "list of objects with a name"),
    ({"inputs": [{**v2(ROWS)["inputs"][0], "shape": [0], "data": []}]}, 400, "age", "empty batch"),
    ({"inputs": [{**v2(ROWS)["inputs"][0], "shape": [11]}]}, 413, "age", "over the limit of 10 rows"),
    ("text", 400, None, "JSON object with 'inputs'"),
]


@pytest.mark.parametrize(("payload", "status", "field", "fragment"), V2_CASES)
def test_bad_v2_requests_name_the_input_and_the_problem(
    payload: Any, status: int, field: str | None, fragment: str
) -> None:
    with pytest.raises(BadInput) as raised:
        decode_v2(payload, SPECS, max_rows=10)
    assert (raised.value.status, raised.value.field) == (status, field)
    assert fragment in raised.value.message


def test_not_nullable_float_refuses_null() -> None:
    specs = {"x": InputSpec.of(InputColumn(name="x", type="float", nullable=False))}
    with pytest.raises(BadInput, match=r"instances\[1\].x: null is not allowed"):
        decode_records({"instances": [{"x": 1.0}, {"x": None}]}, specs, 10)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [(b"", "body is empty"), (b"{", "malformed JSON"), (b'{"a": NaN}', "malformed JSON")],
)
def test_unparseable_bodies_are_bad_input(body: bytes, fragment: str) -> None:
    with pytest.raises(BadInput, match=fragment):
        parse_json(body)


def test_large_clean_columns_take_the_vectorized_path() -> None:
    """10k rows decode without per-row Python work on numeric columns (and correctly)."""
    rows = 10_000
    rng = np.random.default_rng(1)
    income = rng.normal(size=rows).round(3).tolist()
    body = orjson.loads(
        orjson.dumps(
            {
                "inputs": [
                    {"name": "age", "shape": [rows], "datatype": "INT64", "data": list(range(rows))},
                    {"name": "income", "shape": [rows], "datatype": "FP64", "data": income},
                    {"name": "plan", "shape": [rows], "datatype": "BYTES", "data": ["a"] * rows},
                    {"name": "senior", "shape": [rows], "datatype": "BOOL", "data": [True] * rows},
                ]
            }
        )
    )
    batch = decode_v2(body, SPECS, rows)
    np.testing.assert_array_equal(batch.feeds["income"].ravel(), np.asarray(income, dtype=np.float32))
    assert batch.feeds["age"][-1, 0] == rows - 1
