"""Each validation rule, broken on purpose: the expected Violation (rule, column, count) and nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from kubeloop.api.v1alpha1.trainingrun import DatasetSpec
from kubeloop.contracts.results import Violation
from kubeloop.trainer.columns import normalize
from kubeloop.trainer.validation import ValidationReport, validate
from tests.unit.trainer import datasets

N = 200


def check(
    frame: pd.DataFrame, regression: bool = False, target: str = "churn", **rules: Any
) -> ValidationReport:
    dataset = DatasetSpec.model_validate({"uri": "file:///d.csv", "target": target, "validation": rules})
    return validate(normalize(frame), dataset, regression)


def found(report: ValidationReport) -> list[tuple[str, str | None, int]]:
    return [(v.rule, v.column, v.count) for v in report.violations]


@pytest.fixture
def frame() -> pd.DataFrame:
    return datasets.classification(N, seed=7)


def test_a_clean_dataset_passes_every_configured_rule(frame: pd.DataFrame) -> None:
    report = check(
        frame,
        requiredColumns=[{"name": "tenure", "type": "float"}, {"name": "calls", "type": "integer"},
                         {"name": "plan", "type": "string"}, {"name": "autopay", "type": "boolean"}],
        maxMissingFraction=0.1, ranges={"monthly": {"min": 10, "max": 120}, "calls": {"min": 0}},
        allowedCategories={"plan": ["basic", "pro", "team"]}, minRows=100,
        labelBalance={"minClassFraction": 0.3},
    )  # fmt: skip
    assert report.ok and report.violations == []
    assert report.checked == ["target", "requiredColumn", "type", "maxMissingFraction", "range",
                              "allowedCategories", "minRows", "labelBalance"]  # fmt: skip
    assert report.features == datasets.FEATURES
    assert report.summary["tenure"].missing == N // 20 and report.summary["plan"].distinct == 3


def test_required_column_absent(frame: pd.DataFrame) -> None:
    report = check(frame, requiredColumns=[{"name": "region", "type": "string"}])
    assert found(report) == [("requiredColumn", "region", N)]


def test_declared_feature_absent(frame: pd.DataFrame) -> None:
    dataset = DatasetSpec.model_validate(
        {"uri": "file:///d.csv", "target": "churn", "features": ["tenure", "age"]}
    )
    assert found(validate(normalize(frame), dataset, False)) == [("requiredColumn", "age", N)]


def test_type_text_in_an_integer_column(frame: pd.DataFrame) -> None:
    frame["calls"] = frame["calls"].astype(object)
    frame.loc[[3, 9, 27], "calls"] = "many"
    frame["monthly"] = frame["monthly"].astype(object)
    frame.loc[[4], "monthly"] = "n/a"
    report = check(
        frame, requiredColumns=[{"name": "calls", "type": "integer"}, {"name": "monthly", "type": "float"}]
    )
    assert found(report) == [("type", "calls", 3), ("type", "monthly", 1)]
    assert "3 values of 'calls' are not integer" in report.violations[0].message


def test_type_fractions_in_an_integer_column_and_words_in_a_boolean_one(frame: pd.DataFrame) -> None:
    fractional = int((frame["monthly"] % 1 != 0).sum())
    frame["autopay"] = frame["autopay"].astype(object)
    frame.loc[[1, 2], "autopay"] = "sometimes"
    report = check(
        frame,
        requiredColumns=[{"name": "monthly", "type": "integer"}, {"name": "autopay", "type": "boolean"}],
    )
    assert fractional > 100
    assert found(report) == [("type", "monthly", fractional), ("type", "autopay", 2)]


def test_max_missing_fraction(frame: pd.DataFrame) -> None:
    # tenure misses 5%, plan 4%; everything else is complete.
    report = check(frame, maxMissingFraction=0.045)
    assert found(report) == [("maxMissingFraction", "tenure", N // 20)]
    assert "10 of 200 values of 'tenure' are missing (5.0%)" in report.violations[0].message
    report = check(frame, maxMissingFraction=0.01)
    assert found(report) == [
        ("maxMissingFraction", "tenure", N // 20),
        ("maxMissingFraction", "plan", N // 25),
    ]


def test_range(frame: pd.DataFrame) -> None:
    above = int((frame["monthly"] > 100).sum())
    frame.loc[0, "calls"] = -1
    report = check(
        frame, ranges={"monthly": {"max": 100}, "calls": {"min": 0, "max": 9}, "ghost": {"min": 0}}
    )
    assert above > 10
    assert found(report) == [("range", "monthly", above), ("range", "calls", 1), ("range", "ghost", N)]


def test_allowed_categories(frame: pd.DataFrame) -> None:
    teams = int((frame["plan"] == "team").sum())
    report = check(frame, allowedCategories={"plan": ["basic", "pro"], "autopay": ["true", "false"]})
    assert teams > 10
    assert found(report) == [("allowedCategories", "plan", teams)]
    assert "'team'" in report.violations[0].message


def test_min_rows(frame: pd.DataFrame) -> None:
    report = check(frame, minRows=500)
    assert found(report) == [("minRows", None, N)]
    assert "has 200 rows; at least 500" in report.violations[0].message


def test_label_balance(frame: pd.DataFrame) -> None:
    frame["churn"] = np.where(np.arange(N) < 12, "yes", "no")
    report = check(frame, labelBalance={"minClassFraction": 0.1})
    assert found(report) == [("labelBalance", "churn", 12)]
    assert "class 'yes' is 6.0% of the rows" in report.violations[0].message
    assert check(frame, regression=True, target="monthly", labelBalance={"minClassFraction": 0.1}).ok


def test_target_absent_incomplete_or_single_class(frame: pd.DataFrame) -> None:
    assert found(check(frame, target="label")) == [("target", "label", N)]
    frame.loc[[5, 6, 7], "churn"] = None
    assert found(check(frame)) == [("target", "churn", 3)]
    frame["churn"] = "no"
    assert found(check(frame)) == [("target", "churn", 1)]


def test_target_of_the_wrong_kind(frame: pd.DataFrame) -> None:
    # A regressor needs numbers; a classifier needs classes, not measurements.
    assert found(check(frame, regression=True)) == [("target", "churn", N)]
    fractional = int((frame["monthly"] % 1 != 0).sum())
    assert ("target", "monthly", fractional) in found(check(frame, target="monthly"))


def test_every_broken_rule_is_reported_at_once(frame: pd.DataFrame) -> None:
    frame["churn"] = np.where(np.arange(N) < 4, "yes", "no")
    report = check(
        frame, requiredColumns=[{"name": "region", "type": "string"}, {"name": "plan", "type": "integer"}],
        maxMissingFraction=0.0, ranges={"monthly": {"max": 50}}, allowedCategories={"plan": ["basic"]},
        minRows=1000, labelBalance={"minClassFraction": 0.05},
    )  # fmt: skip
    assert not report.ok
    rules = {"requiredColumn", "type", "maxMissingFraction", "range", "allowedCategories", "minRows"}
    assert {v.rule for v in report.violations} == rules | {"labelBalance"}
    assert all(isinstance(v, Violation) and v.message for v in report.violations)
