"""Two answers to the same request, row by row: same label, largest probability gap, value gap.

The model server answers V2 bodies with outputs `label` (rows), `probabilities` (rows x classes,
flattened, with its shape) and `value` (rows); V1 bodies with `predictions`, one object per row with
`label`, `probabilities` {class: p} and `value`. Runs off the client's response path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from kubeloop.contracts.routing import REGRESSION_AGREEMENT_TOLERANCE


@dataclass(frozen=True, slots=True)
class Answer:
    """What one side predicted; None where the model gives no such output."""

    rows: int
    labels: list[Any] | None = None
    probabilities: list[dict[str, float]] | None = None  # V2 rows are keyed by class index
    values: list[float] | None = None


@dataclass(frozen=True, slots=True)
class PairComparison:
    rows: int = 0
    agreed: int = 0
    probability_delta_sum: float = 0.0
    probability_rows: int = 0
    value_delta_sum: float = 0.0
    value_rows: int = 0


def parse_answer(body: bytes, protocol: str) -> Answer | None:
    """The predictions in a 2xx body; None when the body is not a prediction this router understands."""
    try:
        document = orjson.loads(body)
        return _v2(document) if protocol == "v2" else _v1(document)
    except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, AttributeError):
        return None


def _v2(document: dict[str, Any]) -> Answer | None:
    outputs = {o["name"]: o for o in document["outputs"]}
    labels = outputs["label"]["data"] if "label" in outputs else None
    values = [float(v) for v in outputs["value"]["data"]] if "value" in outputs else None
    probabilities = None
    if "probabilities" in outputs:
        tensor = outputs["probabilities"]
        rows, classes = tensor["shape"]
        flat = tensor["data"]
        if len(flat) != rows * classes:
            return None
        probabilities = [{str(c): float(flat[r * classes + c]) for c in range(classes)} for r in range(rows)]
    return _answer(labels, probabilities, values)


def _v1(document: dict[str, Any]) -> Answer | None:
    predictions = document["predictions"]
    first = predictions[0] if predictions else {}
    labels = [p.get("label") for p in predictions] if "label" in first else None
    values = [float(p["value"]) for p in predictions] if "value" in first else None
    probabilities = None
    if "probabilities" in first:
        probabilities = [{str(k): float(v) for k, v in p["probabilities"].items()} for p in predictions]
    return _answer(labels, probabilities, values)


def _answer(
    labels: list[Any] | None, probabilities: list[dict[str, float]] | None, values: list[float] | None
) -> Answer | None:
    lengths = {len(part) for part in (labels, probabilities, values) if part is not None}
    if len(lengths) != 1:
        return None  # nothing to compare, or outputs that disagree on the number of rows
    return Answer(lengths.pop(), labels, probabilities, values)


def compare(stable: Answer, candidate: Answer) -> PairComparison:
    """Row by row over the rows both answers have. A row agrees when the labels are equal
    (classifiers) or the values are within REGRESSION_AGREEMENT_TOLERANCE of the stable value."""
    rows = min(stable.rows, candidate.rows)
    agreed = probability_rows = value_rows = 0
    probability_sum = value_sum = 0.0
    labelled = stable.labels is not None and candidate.labels is not None
    valued = stable.values is not None and candidate.values is not None
    for row in range(rows):
        if labelled:
            agreed += stable.labels[row] == candidate.labels[row]  # type: ignore[index]
        elif valued:
            s, c = stable.values[row], candidate.values[row]  # type: ignore[index]
            agreed += abs(s - c) <= REGRESSION_AGREEMENT_TOLERANCE * abs(s)
    if stable.probabilities is not None and candidate.probabilities is not None:
        for s_row, c_row in zip(stable.probabilities, candidate.probabilities, strict=False):
            classes = s_row.keys() | c_row.keys()
            probability_sum += max((abs(s_row.get(k, 0.0) - c_row.get(k, 0.0)) for k in classes), default=0.0)
            probability_rows += 1
    if valued:
        for s, c in zip(stable.values, candidate.values, strict=False):  # type: ignore[arg-type]
            value_sum += abs(s - c)
            value_rows += 1
    counted = rows if labelled or valued else 0
    return PairComparison(counted, agreed, probability_sum, probability_rows, value_sum, value_rows)
