"""The scikit-learn Pipeline: per-kind preprocessing, then the estimator. All of it goes into ONNX."""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from kubeloop.trainer.columns import MISSING_TEXT, Column

MISSING_CATEGORY = "__missing__"  # a missing category is a category of its own


def _numeric(strategy: str, scaled: bool) -> Pipeline:
    # keep_empty_features: a column that is all missing stays (as zeros), so the ONNX inputs and
    # the signature keep one entry per declared column.
    steps: list[tuple[str, BaseEstimator]] = [
        ("impute", SimpleImputer(strategy=strategy, keep_empty_features=True))
    ]
    if scaled:
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps)


def _categorical() -> Pipeline:
    return Pipeline(
        [
            (
                "impute",
                SimpleImputer(missing_values=MISSING_TEXT, strategy="constant", fill_value=MISSING_CATEGORY),
            ),
            # Dense output: histogram boosting refuses sparse input, and categories never seen in
            # training encode as all zeros instead of failing a request.
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )


def preprocessor(columns: list[Column], scaled: bool) -> ColumnTransformer:
    """Float columns: median; integer columns: the mode (an int64 graph input cannot take a median
    like 2.5); text and boolean columns: a missing category, then one-hot."""
    groups = [
        ("float", _numeric("median", scaled), [c.name for c in columns if c.kind == "float"]),
        ("integer", _numeric("most_frequent", scaled), [c.name for c in columns if c.kind == "integer"]),
        ("categorical", _categorical(), [c.name for c in columns if c.categorical]),
    ]
    return ColumnTransformer([g for g in groups if g[2]], remainder="drop", sparse_threshold=0.0)


def build_pipeline(columns: list[Column], estimator: BaseEstimator, scaled: bool) -> Pipeline:
    return Pipeline([("preprocess", preprocessor(columns, scaled)), ("model", estimator)])
