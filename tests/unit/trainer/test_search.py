"""Which point a trial index evaluates: deterministic, distinct, within the space."""

from __future__ import annotations

import itertools
import math

import pytest

from kubeloop.api.v1alpha1.trainingrun import SearchSpec
from kubeloop.trainer.search import BeyondGrid, grid_point, grid_size, random_point, trial_point

GRID = SearchSpec.model_validate(
    {
        "strategy": "grid",
        "trials": 6,
        "space": {"max_depth": {"values": [2, 4, None]}, "criterion": {"values": ["gini", "entropy"]}},
    }
)
RANDOM = SearchSpec.model_validate(
    {
        "strategy": "random",
        "trials": 50,
        "space": {
            "alpha": {"distribution": "loguniform", "low": 1e-4, "high": 10},
            "fraction": {"distribution": "uniform", "low": 0.2, "high": 0.8},
            "depth": {"distribution": "randint", "low": 2, "high": 5},
            "kernel": {"values": ["rbf", "linear", True]},
        },
    }
)


def test_grid_enumerates_the_product_in_sorted_parameter_order() -> None:
    points = [grid_point(GRID.space, i) for i in range(grid_size(GRID.space))]
    expected = [
        {"criterion": c, "max_depth": d} for c, d in itertools.product(["gini", "entropy"], [2, 4, None])
    ]
    assert grid_size(GRID.space) == 6 and points == expected
    assert trial_point(GRID, seed=1, index=4) == trial_point(GRID, seed=99, index=4) == expected[4]


def test_an_index_beyond_the_grid_is_refused_clearly() -> None:
    with pytest.raises(BeyondGrid, match=r"the grid has 6 points \(indexes 0\.\.5\); index 6 is beyond it"):
        grid_point(GRID.space, 6)


def test_random_points_are_deterministic_distinct_and_within_bounds() -> None:
    points = [random_point(RANDOM.space, seed=42, index=i) for i in range(50)]
    assert points == [trial_point(RANDOM, seed=42, index=i) for i in range(50)]  # same index, same point
    assert len({(p["alpha"], p["fraction"]) for p in points}) == 50
    assert all(1e-4 <= p["alpha"] < 10 and 0.2 <= p["fraction"] < 0.8 for p in points)
    assert {p["depth"] for p in points} == {2, 3, 4}  # randint excludes high
    assert {repr(p["kernel"]) for p in points} == {"'rbf'", "'linear'", "True"}
    assert all(type(p["depth"]) is int and type(p["alpha"]) is float for p in points)  # plain JSON values
    # loguniform spreads over the decades, not only the top one
    assert sum(p["alpha"] < 0.01 for p in points) >= 10
    assert points[0] != random_point(RANDOM.space, seed=43, index=0)


def test_random_point_does_not_depend_on_other_indexes() -> None:
    alone = random_point(RANDOM.space, seed=7, index=31)
    [random_point(RANDOM.space, seed=7, index=i) for i in range(31)]
    assert random_point(RANDOM.space, seed=7, index=31) == alone
    assert math.isfinite(alone["alpha"])
