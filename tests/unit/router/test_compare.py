"""Comparing the two sides' answers row by row, in the bodies the model server really writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kubeloop.contracts.routing import REGRESSION_AGREEMENT_TOLERANCE
from kubeloop.router.compare import PairComparison, compare, parse_answer


def v2(labels: list[Any] | None = None, probabilities: list[list[float]] | None = None,
       values: list[float] | None = None) -> bytes:  # fmt: skip
    outputs: list[dict[str, Any]] = []
    if labels is not None:
        outputs.append({"name": "label", "datatype": "BYTES", "shape": [len(labels)], "data": labels})
    if probabilities is not None:
        shape = [len(probabilities), len(probabilities[0])]
        flat = [p for row in probabilities for p in row]
        outputs.append({"name": "probabilities", "datatype": "FP32", "shape": shape, "data": flat})
    if values is not None:
        outputs.append({"name": "value", "datatype": "FP32", "shape": [len(values)], "data": values})
    return orjson.dumps({"model_name": "m", "model_version": "1", "id": "x", "outputs": outputs})


def v1(rows: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"predictions": rows, "modelName": "m", "modelVersion": "1", "requestId": "x"})


def pair(stable: bytes, candidate: bytes, protocol: str) -> PairComparison:
    s, c = parse_answer(stable, protocol), parse_answer(candidate, protocol)
    assert s is not None and c is not None
    return compare(s, c)


def test_v2_classifier_rows_agree_on_labels_and_report_the_largest_probability_gap() -> None:
    stable = v2(["no", "yes", "no"], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    candidate = v2(["no", "no", "no"], [[0.8, 0.2], [0.55, 0.45], [0.6, 0.4]])
    result = pair(stable, candidate, "v2")
    assert (result.rows, result.agreed) == (3, 2)
    assert result.probability_rows == 3
    assert result.probability_delta_sum == pytest.approx(0.1 + 0.25 + 0.0)
    assert result.value_rows == 0


def test_v2_multiclass_takes_the_max_over_classes() -> None:
    result = pair(v2([0], [[0.5, 0.3, 0.2]]), v2([0], [[0.45, 0.25, 0.3]]), "v2")
    assert result.probability_delta_sum == pytest.approx(0.1)
    assert result.agreed == 1


def test_v1_classifier_aligns_probabilities_by_class_name() -> None:
    stable = v1([{"label": "yes", "probabilities": {"no": 0.2, "yes": 0.8}}])
    candidate = v1([{"label": "yes", "probabilities": {"yes": 0.6, "no": 0.4}}])
    result = pair(stable, candidate, "v1")
    assert (result.rows, result.agreed, result.probability_rows) == (1, 1, 1)
    assert result.probability_delta_sum == pytest.approx(0.2)


def test_v1_and_v2_of_the_same_answers_compare_alike() -> None:
    labels, probabilities = ["a", "b"], [[0.7, 0.3], [0.2, 0.8]]
    other = [[0.6, 0.4], [0.6, 0.4]]
    as_v1 = [{"label": label, "probabilities": dict(zip("ab", row, strict=True))}
             for label, row in zip(labels, probabilities, strict=True)]  # fmt: skip
    other_v1 = [{"label": "a", "probabilities": dict(zip("ab", row, strict=True))} for row in other]
    from_v1 = pair(v1(as_v1), v1(other_v1), "v1")
    from_v2 = pair(v2(labels, probabilities), v2(["a", "a"], other), "v2")
    assert from_v1 == from_v2
    assert from_v1.agreed == 1 and from_v1.probability_delta_sum == pytest.approx(0.1 + 0.4)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_regressors_agree_within_the_relative_tolerance(protocol: str) -> None:
    stable_values = [100.0, 100.0, -200.0, 0.0]
    inside = 100.0 * (1 + REGRESSION_AGREEMENT_TOLERANCE * 0.9)
    outside = 100.0 * (1 + REGRESSION_AGREEMENT_TOLERANCE * 1.1)
    candidate_values = [inside, outside, -200.0 * (1 - REGRESSION_AGREEMENT_TOLERANCE / 2), 0.0]
    if protocol == "v2":
        result = pair(v2(values=stable_values), v2(values=candidate_values), "v2")
    else:
        result = pair(
            v1([{"value": v} for v in stable_values]), v1([{"value": v} for v in candidate_values]), "v1"
        )
    assert (result.rows, result.agreed, result.value_rows) == (4, 3, 4)
    expected = sum(abs(s - c) for s, c in zip(stable_values, candidate_values, strict=True))
    assert result.value_delta_sum == pytest.approx(expected)
    assert result.probability_rows == 0


def test_only_the_rows_both_sides_have_are_compared() -> None:
    result = pair(v2(["a", "b", "c"]), v2(["a", "x"]), "v2")
    assert (result.rows, result.agreed) == (2, 1)


@pytest.mark.parametrize(
    ("body", "protocol"),
    [
        (b"not json", "v2"),
        (b'{"error": "bad input"}', "v2"),
        (b'{"outputs": []}', "v2"),  # nothing to compare
        (b'{"outputs": [{"name": "probabilities", "shape": [2, 2], "data": [0.5]}]}', "v2"),
        (b'{"outputs": [{"name": "label", "data": ["a"]}, {"name": "value", "data": [1, 2]}]}', "v2"),
        (b'{"predictions": "nope"}', "v1"),
        (b"[]", "v1"),
    ],
)
def test_bodies_that_are_not_predictions_are_not_compared(body: bytes, protocol: str) -> None:
    assert parse_answer(body, protocol) is None
