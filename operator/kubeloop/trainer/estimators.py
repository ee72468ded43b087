"""The allow-list: API estimator names mapped to scikit-learn classes. Nothing else is ever built.

No import paths come from the spec: an estimator outside the API's enum is refused before any data
is read, and parameters are checked against the class's own constructor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVC, SVR

from kubeloop.api.v1alpha1.trainingrun import Estimator
from kubeloop.trainer.errors import invalid_spec


@dataclass(frozen=True)
class Recipe:
    cls: type[BaseEstimator]
    scaled: bool  # distance- and gradient-based models need standardized inputs
    defaults: dict[str, Any] = field(default_factory=dict)  # applied unless the spec sets them
    required: dict[str, Any] = field(default_factory=dict)  # the model card needs these values
    export_hint: str = ""  # added to an ExportMismatch message


_TIES = (
    "k-NN: neighbours at exactly equal distance (duplicate rows, only categorical or integer features) "
    "are ordered differently by scikit-learn and onnxruntime, so the k-th neighbour can differ; "
    "add a continuous feature or choose another estimator"
)


RECIPES: dict[Estimator, Recipe] = {
    Estimator.LOGISTIC_REGRESSION: Recipe(LogisticRegression, True, {"max_iter": 1000}),
    Estimator.LINEAR_REGRESSION: Recipe(LinearRegression, True),
    Estimator.RIDGE: Recipe(Ridge, True),
    Estimator.RANDOM_FOREST_CLASSIFIER: Recipe(RandomForestClassifier, False),
    Estimator.RANDOM_FOREST_REGRESSOR: Recipe(RandomForestRegressor, False),
    Estimator.GRADIENT_BOOSTING_CLASSIFIER: Recipe(GradientBoostingClassifier, False),
    Estimator.GRADIENT_BOOSTING_REGRESSOR: Recipe(GradientBoostingRegressor, False),
    Estimator.HIST_GRADIENT_BOOSTING_CLASSIFIER: Recipe(HistGradientBoostingClassifier, False),
    Estimator.HIST_GRADIENT_BOOSTING_REGRESSOR: Recipe(HistGradientBoostingRegressor, False),
    Estimator.K_NEIGHBORS_CLASSIFIER: Recipe(KNeighborsClassifier, True, export_hint=_TIES),
    Estimator.K_NEIGHBORS_REGRESSOR: Recipe(KNeighborsRegressor, True, export_hint=_TIES),
    # Probabilities (roc_auc, log_loss, the card's golden outputs) need Platt scaling on.
    Estimator.SVC: Recipe(SVC, True, required={"probability": True}),
    Estimator.SVR: Recipe(SVR, True),
}


def allowed_names() -> list[str]:
    return [e.value for e in Estimator if e in RECIPES]


def resolve(name: Any) -> Estimator:
    """The allow-listed estimator called `name`, or a refusal that lists the allowed ones."""
    try:
        estimator = Estimator(name)
    except (ValueError, TypeError):
        estimator = None
    if estimator is None or estimator not in RECIPES:
        raise invalid_spec(
            f"spec.algorithm.estimator {name!r} is not allowed; choose one of: {', '.join(allowed_names())}"
        )
    return estimator


def effective_params(estimator: Estimator, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Defaults, then the spec's params; the seed where the class takes one and none was given."""
    recipe = RECIPES[estimator]
    accepted = recipe.cls().get_params()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise invalid_spec(
            f"{estimator.value} has no parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(sorted(accepted))}"
        )
    conflicts = [k for k, v in recipe.required.items() if k in params and params[k] != v]
    if conflicts:
        raise invalid_spec(
            f"{estimator.value} needs {', '.join(f'{k}={recipe.required[k]}' for k in conflicts)}"
        )
    merged = {**recipe.defaults, **params, **recipe.required}
    if "random_state" in accepted and merged.get("random_state") is None:
        merged["random_state"] = seed
    return merged


def build(estimator: Estimator, params: dict[str, Any]) -> BaseEstimator:
    """A fresh, unfitted estimator; bad parameter values surface at fit time as InvalidSpec."""
    return RECIPES[estimator].cls(**params)
