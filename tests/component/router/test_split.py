"""Canary and shadow between two real model servers: the split seen by the client, and the router's
comparison counts against what the test computes from the two servers' own answers."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.component.router.conftest import CANDIDATE, STABLE, Router, address, table
from tests.component.serving.conftest import Server, TrainedModel, churn_frame, v2_body, v2_output

REQUESTS = 400


def test_canary_weight_split_is_seen_in_x_kubeloop_version(
    serve: Callable[..., Server], classifier: TrainedModel, start_router: Callable[..., Router]
) -> None:
    stable = serve(classifier)
    candidate = serve(classifier, KUBELOOP_MODEL_VERSION="2")
    routing = table(mode="Canary", weight=30, comparePercent=100)
    router = start_router(routing, {STABLE: [address(stable)], CANDIDATE: [address(candidate)]})
    body = v2_body(stable, classifier.golden_rows[:3])
    answered: Counter[str] = Counter()
    for _ in range(REQUESTS):
        response = router.infer(body)
        assert response.status_code == 200, response.text
        version = response.headers["x-kubeloop-version"]
        assert response.json()["model_version"] == version  # that version's server really answered
        answered[version] += 1
    sigma = math.sqrt(REQUESTS * 0.3 * 0.7)
    assert abs(answered["2"] - REQUESTS * 0.3) <= 4.5 * sigma, answered
    assert answered["1"] + answered["2"] == REQUESTS
    # Every request was also copied to the other side; the same model agrees on every row.
    stats = router.wait_stats(lambda s: s.comparison.requests == REQUESTS, "all pairs compared")
    assert stats.stable.requests == stats.candidate.requests == REQUESTS  # answers + copies, per side
    assert stats.stable.errors == stats.candidate.errors == 0
    assert stats.comparison.rows == stats.comparison.agreed == 3 * REQUESTS
    assert stats.comparison.probability_delta_sum == pytest.approx(0, abs=1e-6)
    assert stats.comparison.candidate_errors == stats.comparison.dropped == 0


def expected_comparison(stable: dict[str, Any], candidate: dict[str, Any]) -> tuple[int, int, float]:
    """(rows, agreed, sum of per-row max probability gaps) from the two servers' direct V2 answers."""
    labels = [v2_output_of(stable, "label"), v2_output_of(candidate, "label")]
    probabilities = [v2_output_of(stable, "probabilities"), v2_output_of(candidate, "probabilities")]
    rows = len(labels[0])
    classes = len(probabilities[0]) // rows
    agreed = sum(a == b for a, b in zip(*labels, strict=True))
    gaps = sum(
        max(
            abs(probabilities[0][r * classes + c] - probabilities[1][r * classes + c]) for c in range(classes)
        )
        for r in range(rows)
    )
    return rows, agreed, gaps


def v2_output_of(document: dict[str, Any], name: str) -> list[Any]:
    (output,) = [o for o in document["outputs"] if o["name"] == name]
    data: list[Any] = output["data"]
    return data


def test_shadow_answers_from_stable_and_counts_what_the_test_counts(
    serve: Callable[..., Server],
    classifier: TrainedModel,
    other_classifier: TrainedModel,
    start_router: Callable[..., Router],
) -> None:
    stable = serve(classifier)
    candidate = serve(other_classifier, KUBELOOP_MODEL_VERSION="2")
    router = start_router(
        table(mode="Shadow", shadowPercent=100), {STABLE: [address(stable)], CANDIDATE: [address(candidate)]}
    )
    frame = churn_frame(rows=120, seed=99).drop(columns=["churned"])
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    batches = [records[i : i + 6] for i in range(0, len(records), 6)]
    want_rows = want_agreed = 0
    want_gaps = 0.0
    for index, batch in enumerate(batches):
        body = v2_body(stable, batch)
        headers = {"x-request-id": f"shadow-{index}"}
        routed = router.infer(body, headers=headers)
        direct = stable.infer(body, headers=headers)
        assert routed.status_code == 200 and routed.content == direct.content
        assert routed.headers["x-kubeloop-version"] == "1"
        theirs = candidate.infer(body, headers=headers)
        rows, agreed, gaps = expected_comparison(direct.json(), theirs.json())
        want_rows, want_agreed, want_gaps = want_rows + rows, want_agreed + agreed, want_gaps + gaps
    assert 0 < want_agreed < want_rows  # the two models really differ on some rows
    stats = router.wait_stats(lambda s: s.comparison.requests == len(batches), "every copy compared")
    assert stats.stable.requests == stats.candidate.requests == len(batches)
    assert stats.stable.errors == stats.candidate.errors == 0
    assert (stats.comparison.rows, stats.comparison.agreed) == (want_rows, want_agreed)
    assert stats.comparison.probability_rows == want_rows
    assert stats.comparison.probability_delta_sum == pytest.approx(want_gaps, rel=1e-6)
    assert stats.agreement == pytest.approx(want_agreed / want_rows)
    v1 = router.post("/v1/models/churn:predict", {"instances": batches[0]})
    assert v1.status_code == 200 and [p["label"] for p in v1.json()["predictions"]] == v2_output(
        stable.infer(v2_body(stable, batches[0])), "label"
    )
    after = router.wait_stats(lambda s: s.comparison.requests == len(batches) + 1, "the v1 pair compared")
    assert after.comparison.rows == want_rows + len(batches[0])
