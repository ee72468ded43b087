"""Mode `trial`: one point of the search space, scored by k-fold CV on the training split only.

The test split stays untouched until the final `train`, so the chosen params are not tuned on it.
A point that cannot be fitted (a bad value, an index beyond the grid) is a Failed trial, reported
with exit code 0: the other trials go on. Bad data or a bad spec stops the whole search (exit 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from sklearn.utils._param_validation import InvalidParameterError

from kubeloop.api.v1alpha1.common import MetricName
from kubeloop.api.v1alpha1.trainingrun import SearchSpec, TrainingRunSpec
from kubeloop.contracts.results import TrialResult
from kubeloop.contracts.tasks import TrainerTask
from kubeloop.store.client import Store
from kubeloop.store.layout import trial_key
from kubeloop.trainer import logs
from kubeloop.trainer.artifacts import RunFolder
from kubeloop.trainer.errors import TrainerFailure, invalid_spec
from kubeloop.trainer.estimators import effective_params
from kubeloop.trainer.metrics import default_search_metric
from kubeloop.trainer.prepare import Prepared, prepare
from kubeloop.trainer.search import BeyondGrid, Params, cv_score, trial_point
from kubeloop.trainer.train import make_pipeline

INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in every pod of an Indexed Job


def trial_index(env: Mapping[str, str] = os.environ) -> int:
    raw = env.get(INDEX_ENV, "")
    if not raw.isdigit():
        raise TrainerFailure("InvalidTask", f"mode trial needs {INDEX_ENV} (an Indexed Job); got {raw!r}")
    return int(raw)


def search_of(spec: TrainingRunSpec) -> SearchSpec:
    if spec.algorithm.search is None:
        raise invalid_spec("mode trial needs spec.algorithm.search")
    return spec.algorithm.search


def search_metric(spec: TrainingRunSpec) -> MetricName:
    search = search_of(spec)
    return search.metric or default_search_metric(spec.algorithm.estimator.is_regressor)


def score_point(prepared: Prepared, index: int, point: Params) -> TrialResult:
    search, metric = search_of(prepared.spec), search_metric(prepared.spec)
    # An unknown parameter name fails every trial alike: a spec error (raised, permanent).
    params = effective_params(prepared.estimator, {**prepared.spec.algorithm.params, **point}, prepared.seed)
    base = TrialResult(index=index, params=point, metric=metric.value, outcome="Failed", reason="TrialFailed")
    try:
        with logs.timed("cross-validated", index=index, folds=search.cv_folds) as timing:
            model = make_pipeline(prepared, params)
            folds = cv_score(model, prepared.x_train, prepared.y_train, metric, folds=search.cv_folds,
                             seed=prepared.seed, regression=prepared.regression)  # fmt: skip
            timing["scores"] = folds
    except (InvalidParameterError, ValueError, TypeError) as error:
        return base.model_copy(update={"message": f"fitting failed: {error}"[:1000]})
    score = sum(folds) / len(folds)
    if not math.isfinite(score):
        return base.model_copy(update={"message": f"the mean score is {score}"})
    message = f"mean {metric.value} over {len(folds)} folds of the training split"
    return base.model_copy(
        update={"score": score, "outcome": "Succeeded", "reason": None, "message": message}
    )


def run_trial(task: TrainerTask, store: Store, index: int) -> TrialResult:
    folder = RunFolder(store, task.output)
    prepared = prepare(task.spec, store, folder)
    search = search_of(prepared.spec)
    try:
        point = trial_point(search, prepared.seed, index)
    except BeyondGrid as error:
        result = TrialResult(
            index=index,
            params={},
            metric=search_metric(prepared.spec).value,
            outcome="Failed",
            reason="BeyondGrid",
            message=str(error),
        )
    else:
        logs.event("trial-point", index=index, strategy=search.strategy.value, params=point)
        result = score_point(prepared, index, point)
    folder.put_text(trial_key(index), result.to_json())
    logs.event("trial-done", index=index, outcome=result.outcome, score=result.score)
    return result
