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
    probabilities: list[list[float]] | None = None  # rows x classes
    classes: list[str] | None = None  # the class of each column (V1); None: by index (V2)
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
        rows, width = tensor["shape"]
        flat = tensor["data"]
        if len(flat) != rows * width:
            return None
        probabilities = [flat[r * width : (r + 1) * width] for r in range(rows)]
    return _answer(labels, probabilities, None, values)


def _v1(document: dict[str, Any]) -> Answer | None:
    predictions = document["predictions"]
    first = predictions[0] if predictions else {}
    labels = [p.get("label") for p in predictions] if "label" in first else None
    values = [float(p["value"]) for p in predictions] if "value" in first else None
    probabilities = classes = None
    if "probabilities" in first:
        classes = list(first["probabilities"])
        probabilities = [[p["probabilities"][c] for c in classes] for p in predictions]
    return _answer(labels, probabilities, classes, values)


def _answer(
    labels: list[Any] | None,
    probabilities: list[list[float]] | None,
    classes: list[str] | None,
    values: list[float] | None,
) -> Answer | None:
    lengths = {len(part) for part in (labels, probabilities, values) if part is not None}
    if len(lengths) != 1:
        return None  # nothing to compare, or outputs that disagree on the number of rows
    return Answer(lengths.pop(), labels, probabilities, classes, values)


def _largest_gap(stable: Answer, candidate: Answer) -> tuple[float, int]:
    """Sum over rows of max over classes |p_stable - p_candidate|, and the rows counted."""
    if stable.probabilities is None or candidate.probabilities is None:
        return 0.0, 0
    pairs = zip(stable.probabilities, candidate.probabilities, strict=False)
    if stable.classes == candidate.classes:  # the same columns in the same order
        gaps = [max((abs(a - b) for a, b in zip(s, c, strict=False)), default=0.0) for s, c in pairs]
    else:  # V1 rows naming their classes in another order, or other classes
        s_names, c_names = stable.classes or [], candidate.classes or []
        gaps = []
        for s, c in pairs:
            mine, theirs = dict(zip(s_names, s, strict=False)), dict(zip(c_names, c, strict=False))
            gaps.append(
                max(
                    (abs(mine.get(k, 0.0) - theirs.get(k, 0.0)) for k in mine.keys() | theirs.keys()),
                    default=0.0,
                )
            )
    return float(sum(gaps)), len(gaps)


def compare(stable: Answer, candidate: Answer) -> PairComparison:
    """Row by row over the rows both answers have. A row agrees when the labels are equal
    (classifiers) or the values are within REGRESSION_AGREEMENT_TOLERANCE of the stable value."""
    rows = min(stable.rows, candidate.rows)
    agreed = value_rows = 0
    value_sum = 0.0
    if stable.labels is not None and candidate.labels is not None:
        agreed = sum(1 for s, c in zip(stable.labels, candidate.labels, strict=False) if s == c)
    elif stable.values is None or candidate.values is None:
        rows = 0  # no label and no value on both sides: nothing to agree on
    if stable.values is not None and candidate.values is not None:
        for s, c in zip(stable.values, candidate.values, strict=False):
            delta = abs(s - c)
            value_sum += delta
            value_rows += 1
            if stable.labels is None or candidate.labels is None:
                agreed += delta <= REGRESSION_AGREEMENT_TOLERANCE * abs(s)
    probability_sum, probability_rows = _largest_gap(stable, candidate)
    return PairComparison(rows, agreed, probability_sum, probability_rows, value_sum, value_rows)
