"""Data checks run before any training (spec.dataset.validation). Pure: a DataFrame in, a report out.

Every broken rule is reported, not just the first, each as a Violation naming the rule, the column
and how many values broke it, so one failed run tells the data owner everything to fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import Field

from kubeloop.api.v1alpha1.common import ColumnType
from kubeloop.api.v1alpha1.trainingrun import DatasetSpec, DataValidation, LabelBalance, ValueRange
from kubeloop.contracts.model import ColumnKind, Wire
from kubeloop.contracts.results import Violation
from kubeloop.trainer.columns import MISSING_TEXT, infer_kind, to_bool_text, to_category, to_number


class ColumnSummary(Wire):
    kind: ColumnKind
    missing: int
    distinct: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None


class ValidationReport(Wire):
    """validation.json: what was checked, what broke, and a summary of every column."""

    ok: bool
    rows: int
    columns: int
    target: str
    features: list[str]
    checked: list[str]  # the rules that were configured (target presence is always checked)
    violations: list[Violation] = Field(default_factory=list)
    summary: dict[str, ColumnSummary] = Field(default_factory=dict)


def missing_mask(series: pd.Series) -> pd.Series:
    mask = series.isna()
    if series.dtype == object:
        mask |= series.map(lambda v: v == MISSING_TEXT)
    return mask


def feature_names(frame: pd.DataFrame, dataset: DatasetSpec) -> list[str]:
    """The declared features, or every column but the target."""
    if dataset.features:
        return list(dataset.features)
    return [str(c) for c in frame.columns if c != dataset.target]


# --- one function per rule ---------------------------------------------------------------------


def broken(rule: str, column: str | None, count: int, message: str) -> Violation:
    return Violation(rule=rule, column=column, count=count, message=message)


def check_min_rows(frame: pd.DataFrame, min_rows: int | None) -> list[Violation]:
    if min_rows is None or len(frame) >= min_rows:
        return []
    return [
        broken(
            "minRows",
            None,
            len(frame),
            f"the dataset has {len(frame)} rows; at least {min_rows} are required",
        )
    ]


def _absent(rule: str, column: str, rows: int) -> Violation:
    return broken(rule, column, rows, f"column {column!r} is not in the dataset")


def check_features(frame: pd.DataFrame, features: list[str]) -> list[Violation]:
    if not features:
        return [broken("requiredColumn", None, 0, "the dataset has no feature column besides the target")]
    return [_absent("requiredColumn", f, len(frame)) for f in features if f not in frame.columns]


def type_offenders(series: pd.Series, declared: ColumnType) -> int:
    """Present values that cannot be read as `declared` (every value can be read as a string)."""
    present = series[~missing_mask(series)]
    if declared == ColumnType.STRING or present.empty:
        return 0
    if declared == ColumnType.BOOLEAN:
        return int((~present.map(to_bool_text).isin(["true", "false"])).sum())
    numbers = to_number(present)
    bad = numbers.isna() | ~np.isfinite(numbers.fillna(0.0))
    if declared == ColumnType.INTEGER:
        bad |= numbers.fillna(0.0).map(lambda v: math.isfinite(v) and not float(v).is_integer())
    return int(bad.sum())


def check_required(frame: pd.DataFrame, validation: DataValidation) -> list[Violation]:
    found: list[Violation] = []
    for spec in validation.required_columns:
        if spec.name not in frame.columns:
            found.append(_absent("requiredColumn", spec.name, len(frame)))
        elif count := type_offenders(frame[spec.name], spec.type):
            message = f"{count} values of {spec.name!r} are not {spec.type.value}"
            found.append(broken("type", spec.name, count, message))
    return found


def check_missing(frame: pd.DataFrame, features: list[str], max_fraction: float | None) -> list[Violation]:
    if max_fraction is None or frame.empty:
        return []
    found = []
    for name in (f for f in features if f in frame.columns):
        missing = int(missing_mask(frame[name]).sum())
        fraction = missing / len(frame)
        if fraction > max_fraction:
            message = (f"{missing} of {len(frame)} values of {name!r} are missing ({fraction:.1%}); "
                       f"at most {max_fraction:.1%} allowed")  # fmt: skip
            found.append(broken("maxMissingFraction", name, missing, message))
    return found


def range_offenders(series: pd.Series, bounds: ValueRange) -> int:
    """Present values outside [min, max], or not numbers at all."""
    numbers = to_number(series[~missing_mask(series)])
    bad = numbers.isna()
    if bounds.min is not None:
        bad |= numbers < bounds.min
    if bounds.max is not None:
        bad |= numbers > bounds.max
    return int(bad.sum())


def check_ranges(frame: pd.DataFrame, ranges: dict[str, ValueRange]) -> list[Violation]:
    found = []
    for name, bounds in ranges.items():
        if name not in frame.columns:
            found.append(_absent("range", name, len(frame)))
        elif count := range_offenders(frame[name], bounds):
            message = f"{count} values of {name!r} are not numbers within [{bounds.min}, {bounds.max}]"
            found.append(broken("range", name, count, message))
    return found


def check_categories(frame: pd.DataFrame, allowed: dict[str, list[str]]) -> list[Violation]:
    found = []
    for name, values in allowed.items():
        if name not in frame.columns:
            found.append(_absent("allowedCategories", name, len(frame)))
            continue
        present = frame[name][~missing_mask(frame[name])].map(to_category)
        offending = present[~present.isin(values)]
        if len(offending):
            examples = ", ".join(repr(v) for v in offending.unique()[:5])
            message = (
                f"{len(offending)} values of {name!r} are outside the allowed categories (e.g. {examples})"
            )
            found.append(broken("allowedCategories", name, len(offending), message))
    return found


def check_target(frame: pd.DataFrame, target: str, regression: bool) -> list[Violation]:
    """The target exists, is complete, and holds what the task needs."""
    if target not in frame.columns:
        return [_absent("target", target, len(frame))]
    found = []
    if missing := int(missing_mask(frame[target]).sum()):
        found.append(
            broken("target", target, missing, f"{missing} rows have no value for the target {target!r}")
        )
    present = frame[target][~missing_mask(frame[target])]
    if regression:
        if count := type_offenders(present, ColumnType.FLOAT):
            found.append(
                broken("target", target, count, f"{count} target values are not numbers (regression)")
            )
        return found
    numeric = infer_kind(present) in ("integer", "float")
    if numeric and (count := type_offenders(present, ColumnType.INTEGER)):
        message = f"{count} target values are non-integral numbers: a classifier needs classes"
        found.append(broken("target", target, count, message))
    if (classes := present.map(to_category).nunique()) < 2:
        message = f"the target has {classes} class(es); a classifier needs at least 2"
        found.append(broken("target", target, int(classes), message))
    return found


def check_balance(frame: pd.DataFrame, target: str, balance: LabelBalance | None) -> list[Violation]:
    """One violation per class below the minimum fraction (classifiers only)."""
    if balance is None or target not in frame.columns:
        return []
    labels = frame[target][~missing_mask(frame[target])].map(to_category)
    found = []
    for label, count in labels.value_counts().items():
        if count / len(labels) < balance.min_class_fraction:
            message = (f"class {label!r} is {count / len(labels):.1%} of the rows; every class needs at "
                       f"least {balance.min_class_fraction:.1%}")  # fmt: skip
            found.append(broken("labelBalance", target, int(count), message))
    return found


# --- the whole check ---------------------------------------------------------------------------


def summarize(series: pd.Series) -> ColumnSummary:
    kind = infer_kind(series)
    missing = missing_mask(series)
    summary = ColumnSummary(kind=kind, missing=int(missing.sum()), distinct=int(series[~missing].nunique()))
    if kind in ("integer", "float") and (~missing).any():
        numbers = to_number(series[~missing])
        finite = numbers[np.isfinite(numbers)]
        if len(finite):
            summary = summary.model_copy(
                update={"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean())}
            )
    return summary


def configured_rules(validation: DataValidation) -> list[str]:
    rules: list[tuple[str, Callable[[DataValidation], object]]] = [
        ("requiredColumn", lambda v: v.required_columns),
        ("type", lambda v: v.required_columns),
        ("maxMissingFraction", lambda v: v.max_missing_fraction is not None),
        ("range", lambda v: v.ranges),
        ("allowedCategories", lambda v: v.allowed_categories),
        ("minRows", lambda v: v.min_rows),
        ("labelBalance", lambda v: v.label_balance),
    ]
    return ["target", *(name for name, configured in rules if configured(validation))]


def validate(frame: pd.DataFrame, dataset: DatasetSpec, regression: bool) -> ValidationReport:
    validation = dataset.validation or DataValidation()
    features = feature_names(frame, dataset)
    violations = [
        *check_min_rows(frame, validation.min_rows),
        *check_features(frame, features),
        *check_required(frame, validation),
        *check_missing(frame, features, validation.max_missing_fraction),
        *check_ranges(frame, validation.ranges),
        *check_categories(frame, validation.allowed_categories),
        *check_target(frame, dataset.target, regression),
        *([] if regression else check_balance(frame, dataset.target, validation.label_balance)),
    ]
    return ValidationReport(
        ok=not violations,
        rows=len(frame),
        columns=len(frame.columns),
        target=dataset.target,
        features=features,
        checked=configured_rules(validation),
        violations=violations,
        summary={str(name): summarize(frame[name]) for name in frame.columns},
    )
