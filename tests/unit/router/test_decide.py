"""Routing decisions: the split over many requests stays within binomial bounds (fixed seed)."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from kubeloop.contracts.routing import Backend, RoutingMode, RoutingTable
from kubeloop.router.decide import Decision, Side, Splitter, inference_protocol

DRAWS = 20_000


def table(mode: RoutingMode, candidate: bool = True, **fields: int) -> RoutingTable:
    return RoutingTable(
        deployment="churn",
        model="churn",
        epoch="e1",
        mode=mode,
        stable=Backend(version=1, service="churn-v1"),
        candidate=Backend(version=2, service="churn-v2") if candidate else None,
        **fields,
    )


def decisions(routing: RoutingTable, seed: int = 7) -> Counter[Decision]:
    splitter, draw = Splitter.of(routing), random.Random(seed)
    return Counter(splitter.decide(draw) for _ in range(DRAWS))


def within_binomial(count: int, share: float, draws: int = DRAWS) -> bool:
    """`count` successes in `draws` is within 4.5 standard deviations of share * draws."""
    sigma = math.sqrt(draws * share * (1 - share))
    return abs(count - draws * share) <= 4.5 * sigma + 1e-9


@pytest.mark.parametrize(("weight", "compare"), [(10, 100), (30, 50), (50, 0), (90, 20)])
def test_canary_answers_weight_percent_from_the_candidate_and_copies_compare_percent(
    weight: int, compare: int
) -> None:
    seen = decisions(table(RoutingMode.CANARY, weight=weight, comparePercent=compare))
    by_candidate = sum(n for d, n in seen.items() if d.answer is Side.CANDIDATE)
    copied = sum(n for d, n in seen.items() if d.copy is not None)
    assert within_binomial(by_candidate, weight / 100), by_candidate
    assert within_binomial(copied, compare / 100), copied
    assert all(d.copy in (None, d.answer.other) for d in seen)  # a copy always goes to the OTHER side


def test_binomial_bound_is_tight_enough_to_catch_a_wrong_weight() -> None:
    seen = decisions(table(RoutingMode.CANARY, weight=30))
    by_candidate = sum(n for d, n in seen.items() if d.answer is Side.CANDIDATE)
    assert not within_binomial(by_candidate, 0.27) and not within_binomial(by_candidate, 0.33)


@pytest.mark.parametrize("percent", [1, 25, 100])
def test_shadow_answers_from_stable_and_copies_shadow_percent_to_the_candidate(percent: int) -> None:
    seen = decisions(table(RoutingMode.SHADOW, shadowPercent=percent))
    assert {d.answer for d in seen} == {Side.STABLE}
    copied = sum(n for d, n in seen.items() if d.copy is Side.CANDIDATE)
    assert within_binomial(copied, percent / 100), copied


@pytest.mark.parametrize(
    "routing",
    [
        table(RoutingMode.STABLE_ONLY, weight=50, shadowPercent=50),
        table(RoutingMode.CANARY, candidate=False, weight=50),
        table(RoutingMode.SHADOW, candidate=False, shadowPercent=100),
        table(RoutingMode.SHADOW, shadowPercent=0),
        table(RoutingMode.CANARY, weight=0, comparePercent=0),
    ],
    ids=["stable-only", "canary-without-candidate", "shadow-without-candidate", "shadow-0", "canary-0"],
)
def test_everything_to_stable_without_a_live_candidate(routing: RoutingTable) -> None:
    assert decisions(routing, seed=3) == Counter({Decision(Side.STABLE): DRAWS})


def test_canary_at_100_sends_everything_to_the_candidate() -> None:
    seen = decisions(table(RoutingMode.CANARY, weight=100, comparePercent=100))
    assert seen == Counter({Decision(Side.CANDIDATE, Side.STABLE): DRAWS})


def test_the_same_seed_gives_the_same_sequence() -> None:
    routing = table(RoutingMode.CANARY, weight=40, comparePercent=40)
    assert decisions(routing, seed=11) == decisions(routing, seed=11)


@pytest.mark.parametrize(
    ("method", "path", "protocol"),
    [
        ("POST", "/v2/models/churn/infer", "v2"),
        ("POST", "/v2/models/churn/versions/3/infer", "v2"),
        ("POST", "/v1/models/churn:predict", "v1"),
        ("GET", "/v2/models/churn/infer", None),
        ("POST", "/v2/models//infer", None),
        ("POST", "/v2/models/churn/versions//infer", None),
        ("POST", "/v2/models/churn/extra/infer", None),
        ("POST", "/v1/models/a/b:predict", None),
        ("POST", "/v1/feedback", None),
        ("GET", "/v2/health/ready", None),
        ("GET", "/v2/models/churn", None),
    ],
)
def test_only_predictions_are_split(method: str, path: str, protocol: str | None) -> None:
    assert inference_protocol(method, path) == protocol
