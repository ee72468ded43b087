"""Request bodies -> one numpy array per graph input, or a 4xx naming the column and the problem.

The column conversions live in columns.py; this module checks the shape of whole requests (V2
tensors, records) and converts the float columns of a V2 request in one numpy call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import orjson

from kubeloop.serving.columns import ColumnProblem, InputSpec, column_array


class BadInput(Exception):
    """The request cannot be scored as sent: answered with `status` and a message naming `field`."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass(slots=True)
class Batch:
    """Decoded rows: one flat array per column; `feeds` views them as onnxruntime takes them."""

    columns: dict[str, np.ndarray]  # column -> (rows,)
    rows: int
    request_id: str | None = None  # the V2 body's "id"
    outputs: list[str] | None = None  # the V2 body's requested outputs
    feeds: dict[str, np.ndarray] = field(init=False)  # column -> (rows, 1) view

    def __post_init__(self) -> None:
        self.feeds = {name: column.reshape(self.rows, 1) for name, column in self.columns.items()}


def parse_json(body: bytes) -> Any:
    if not body:
        raise BadInput("the request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadInput(f"malformed JSON: {error}") from None


def decode_v2(payload: Any, specs: Mapping[str, InputSpec], max_rows: int) -> Batch:
    """Open Inference Protocol body: one named tensor per column."""
    if not isinstance(payload, dict):
        raise BadInput("the body must be a JSON object with 'inputs'")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadInput("'inputs' must be a non-empty list of tensors, one per column", field="inputs")
    tensors: dict[str, tuple[InputSpec, list[Any]]] = {}
    rows = -1
    for index, tensor in enumerate(inputs):
        name, spec, data, count = _tensor_header(tensor, index, specs)
        if name in tensors:
            raise BadInput(f"input '{name}' is given twice", field=name)
        if rows < 0:
            rows = _check_rows(count, max_rows, name)
        elif count != rows:
            raise BadInput(f"input '{name}' has {count} rows but the other inputs have {rows}", field=name)
        tensors[name] = (spec, data)
    _require_all(specs, tensors)
    columns = _numeric_block(tensors, rows)
    for name, (spec, data) in tensors.items():
        if name not in columns:
            columns[name] = _v2_column(name, spec, data, rows)
    return Batch(columns, rows, _v2_id(payload), _v2_outputs(payload))


def _v2_column(name: str, spec: InputSpec, data: list[Any], rows: int) -> np.ndarray:
    try:
        column = column_array(spec, data)
    except ColumnProblem as problem:
        at = f" (element {problem.row})" if problem.row is not None else ""
        raise BadInput(f"input '{name}': {problem.problem}{at}", field=name) from None
    if column.size != rows:
        raise BadInput(f"input '{name}': shape says {rows} values, data has {column.size}", field=name)
    return column


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _numeric_block(tensors: dict[str, tuple[InputSpec, list[Any]]], rows: int) -> dict[str, np.ndarray]:
    """All float32 columns converted by one numpy call (a model with 20 features would otherwise pay 20
    conversions per request). Anything unusual returns nothing: the column-by-column path then
    converts those columns and names the bad value."""
    group = [(name, data) for name, (spec, data) in tensors.items() if spec.element == "float32"]
    if len(group) < 2 or any(len(data) != rows for _, data in group):
        return {}
    try:
        block = np.array([data for _, data in group])
    except (ValueError, TypeError):
        return {}
    if block.ndim == 3 and block.shape[2] == 1:  # data nested as [[v], [v], ...] for shape [rows, 1]
        block = block.reshape(len(group), rows)
    if block.shape != (len(group), rows) or block.dtype.kind not in "iuf":
        return {}
    if block.dtype.kind == "f" and float(np.abs(block).max()) > _FLOAT32_MAX:
        return {}
    converted = block.astype(np.float32)
    return {name: converted[index] for index, (name, _) in enumerate(group)}


def _tensor_header(
    tensor: Any, index: int, specs: Mapping[str, InputSpec]
) -> tuple[str, InputSpec, list[Any], int]:
    """Name, spec, data and rows of one input tensor. The first test is all a well-formed tensor
    costs; anything else goes through the checks that say what is wrong."""
    if type(tensor) is dict:
        name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
        datatype = tensor.get("datatype")
        spec = specs.get(name) if type(name) is str else None
        if (
            spec is not None
            and type(data) is list
            and type(shape) is list
            and type(datatype) is str
            and datatype in spec.datatypes
            and 1 <= len(shape) <= 2
            and type(shape[0]) is int
            and shape[0] >= 0
            and (len(shape) == 1 or (type(shape[1]) is int and shape[1] == 1))
        ):
            return spec.name, spec, data, shape[0]
    _explain_bad_tensor(tensor, index, specs)


def _explain_bad_tensor(tensor: Any, index: int, specs: Mapping[str, InputSpec]) -> NoReturn:
    if not isinstance(tensor, dict):
        raise BadInput(
            f"inputs[{index}] must be an object with name, shape, datatype and data", f"inputs[{index}]"
        )
    name = tensor.get("name")
    if not isinstance(name, str):
        raise BadInput(f"inputs[{index}].name must be a string", field=f"inputs[{index}].name")
    spec = specs.get(name)
    if spec is None:
        known = ", ".join(specs)
        raise BadInput(f"input '{name}': unknown column; the model takes: {known}", field=name)
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in spec.datatypes:
        raise BadInput(
            f"input '{name}': datatype {datatype!r} does not fit a {spec.kind} column (send {spec.datatype})",
            field=name,
        )
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int and d >= 0 for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise BadInput(f"input '{name}': shape must be [rows] or [rows, 1], got {shape!r}", field=name)
    raise BadInput(f"input '{name}': data must be a list of values", field=name)


def _check_rows(rows: int, max_rows: int, field: str) -> int:
    if rows == 0:
        raise BadInput("empty batch: send at least one row", field=field)
    if rows > max_rows:
        raise BadInput(f"batch of {rows} rows is over the limit of {max_rows} rows", field=field, status=413)
    return rows


def _require_all(specs: Mapping[str, InputSpec], feeds: Mapping[str, Any]) -> None:
    if len(feeds) != len(specs):
        missing = [name for name in specs if name not in feeds]
        raise BadInput(f"missing input column(s): {', '.join(missing)}", field=missing[0])


def _v2_id(payload: dict[str, Any]) -> str | None:
    request_id = payload.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 256):
        raise BadInput("'id' must be a string of at most 256 characters", field="id")
    return request_id


def _v2_outputs(payload: dict[str, Any]) -> list[str] | None:
    outputs = payload.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise BadInput("'outputs' must be a list of objects with a name", field="outputs")
    return [o["name"] for o in outputs]


def decode_records(payload: Any, specs: Mapping[str, InputSpec], max_rows: int) -> Batch:
    """The records form for humans: {"instances": [{column: value, ...}, ...]}."""
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list):
        raise BadInput('the body must be {"instances": [{"column": value, ...}, ...]}', field="instances")
    rows = _check_rows(len(instances), max_rows, "instances")
    columns: dict[str, list[Any]] = {name: [] for name in specs}
    for row, record in enumerate(instances):
        _collect(record, row, columns)
    arrays: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        try:
            column = column_array(specs[name], values)
            if column.size != rows:  # a list inside a record was flattened into the column
                raise ColumnProblem("expected a single value, got a list")
        except ColumnProblem as problem:
            raise _record_problem(name, values, problem) from None
        arrays[name] = column
    return Batch(arrays, rows)


def _record_problem(name: str, values: list[Any], problem: ColumnProblem) -> BadInput:
    at, text = problem.row, problem.problem
    if at is None:  # numpy refused the column as a whole: a list among the values
        at = next((i for i, v in enumerate(values) if isinstance(v, list)), None)
        text = "expected a single value, got a list"
    where = f"instances[{at}].{name}" if at is not None else name
    return BadInput(f"{where}: {text}", field=name)


def _collect(record: Any, row: int, columns: dict[str, list[Any]]) -> None:
    if not isinstance(record, dict):
        raise BadInput(f"instances[{row}] must be an object of column values", field=f"instances[{row}]")
    try:
        for name, values in columns.items():
            values.append(record[name])
    except KeyError as error:
        raise BadInput(
            f"instances[{row}]: missing column '{error.args[0]}'", field=str(error.args[0])
        ) from None
    if len(record) != len(columns):
        unknown = next(key for key in record if key not in columns)
        raise BadInput(
            f"instances[{row}]: unknown column '{unknown}'; the model takes: {', '.join(columns)}",
            field=unknown,
        )
