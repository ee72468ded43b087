"""Hyperparameter search: which point a trial index evaluates, and its cross-validated score.

The point depends only on (space, strategy, seed, index), so a retried pod, or any other pod with
the same completion index, evaluates the same parameters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

from kubeloop.api.v1alpha1.common import MetricName
from kubeloop.api.v1alpha1.trainingrun import Distribution, SearchDimension, SearchSpec, SearchStrategy
from kubeloop.trainer.metrics import scorer

Params = dict[str, Any]


class BeyondGrid(Exception):
    """The index has no grid point (more trials than the grid has points)."""


def grid_size(space: dict[str, SearchDimension]) -> int:
    return math.prod(len(space[name].values or []) for name in space)


def grid_point(space: dict[str, SearchDimension], index: int) -> Params:
    """The index-th element of the cartesian product over the sorted parameter names (the last name
    varies fastest, as in itertools.product)."""
    size = grid_size(space)
    if not 0 <= index < size:
        raise BeyondGrid(f"the grid has {size} points (indexes 0..{size - 1}); index {index} is beyond it")
    point: Params = {}
    rest = index
    for name in reversed(sorted(space)):
        values = space[name].values or []
        rest, position = divmod(rest, len(values))
        point[name] = values[position]
    return {name: point[name] for name in sorted(space)}


def _sample(dimension: SearchDimension, rng: np.random.Generator) -> Any:
    if dimension.values is not None:
        return dimension.values[int(rng.integers(len(dimension.values)))]
    low, high = float(dimension.low or 0.0), float(dimension.high or 0.0)
    match dimension.distribution:
        case Distribution.UNIFORM:
            return float(rng.uniform(low, high))
        case Distribution.LOGUNIFORM:
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        case Distribution.RANDINT:
            return int(rng.integers(math.ceil(low), math.ceil(high)))  # high is exclusive
    raise ValueError(f"unknown distribution {dimension.distribution}")


def random_point(space: dict[str, SearchDimension], seed: int, index: int) -> Params:
    """Seeded by (seed, index): independent of how many trials run, and of their order."""
    rng = np.random.default_rng([seed, index])
    return {name: _sample(space[name], rng) for name in sorted(space)}


def trial_point(search: SearchSpec, seed: int, index: int) -> Params:
    if search.strategy == SearchStrategy.GRID:
        return grid_point(search.space, index)
    return random_point(search.space, seed, index)


def cv_score(
    model: Any, x: Any, y: np.ndarray, metric: MetricName, *, folds: int, seed: int, regression: bool
) -> list[float]:
    """Per-fold `metric` (natural units) of `model` cross-validated on (x, y): the training split only."""
    splitter: KFold | StratifiedKFold = KFold(folds, shuffle=True, random_state=seed)
    if not regression and np.unique(y, return_counts=True)[1].min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    signed = cross_val_score(model, x, y, scoring=scorer(metric), cv=splitter, error_score="raise")
    sign = 1.0 if metric.higher_is_better else -1.0
    return [float(sign * s) for s in signed]
