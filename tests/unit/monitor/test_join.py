"""Delayed labels joined to logged predictions by (request id, row), and the drop against training."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubeloop.contracts.monitoring import PerformanceRule
from kubeloop.monitor.join import FeedbackIndex, Labelled, performance_report

AT = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)


def record(request: str, labels: list[str], yes: list[float]) -> dict[str, object]:
    return {"requestId": request, "rows": len(labels),
            "outputs": {"label": labels, "probabilities": [[1 - p, p] for p in yes]}}  # fmt: skip


def test_feedback_joins_by_request_and_row_and_later_labels_win() -> None:
    feedback = FeedbackIndex(limit=100)
    for item in ({"requestId": "r1", "row": 1, "actual": "yes"}, {"requestId": "r1", "actual": "no"},
                 {"requestId": "r1", "row": 1, "actual": "no"}, {"requestId": "r2", "row": 5, "actual": "no"},
                 {"requestId": "r9", "actual": "yes"}):  # fmt: skip
        feedback.add(item)
    assert feedback.items == 4  # r1 row 1 relabelled, not a new item
    labelled = Labelled(regression=False)
    for rec in (record("r1", ["no", "yes", "no"], [0.1, 0.9, 0.2]), record("r2", ["yes"], [0.8])):
        labelled.collect(rec, feedback.by_request[str(rec["requestId"])], AT)
    # r1 rows 0 and 1; r2 row 5 does not exist (a 1-row request); r9 was never logged.
    assert labelled.actual == ["no", "no"] and labelled.predicted == ["no", "yes"]
    assert [p for row in labelled.probabilities for p in row] == pytest.approx([0.9, 0.1, 0.1, 0.9])


def test_the_index_is_capped() -> None:
    feedback = FeedbackIndex(limit=2)
    for n in range(5):
        feedback.add({"requestId": f"r{n}", "actual": "yes"})
    assert (feedback.items, feedback.dropped, len(feedback.by_request)) == (2, 3, 2)


def labelled_accuracy(correct: int, wrong: int) -> Labelled:
    labelled = Labelled(regression=False)
    labelled.actual = ["yes"] * (correct + wrong)
    labelled.predicted = ["yes"] * correct + ["no"] * wrong
    labelled.hours = [AT.replace(minute=0)] * (correct + wrong)
    return labelled


def test_a_drop_beyond_max_drop_is_degraded_and_within_is_not() -> None:
    rule = PerformanceRule(metric="accuracy", max_drop=0.05, min_labeled=50)
    feedback = FeedbackIndex(limit=10)
    worse = performance_report(rule, labelled_accuracy(80, 20), feedback, {"accuracy": 0.9}, ["no", "yes"])
    assert (worse.status, worse.value, worse.degraded) == ("Measured", 0.8, True)
    assert worse.drop == pytest.approx(0.1) and worse.labeled == 100
    assert worse.over_time[0].labeled == 100 and worse.over_time[0].value == 0.8
    fine = performance_report(rule, labelled_accuracy(88, 12), feedback, {"accuracy": 0.9}, ["no", "yes"])
    assert not fine.degraded and fine.drop == pytest.approx(0.02)


def test_few_labels_or_no_baseline_never_degrade() -> None:
    rule = PerformanceRule(metric="accuracy", max_drop=0.05, min_labeled=50)
    few = performance_report(rule, labelled_accuracy(10, 30), FeedbackIndex(10), {"accuracy": 0.9}, None)
    assert few.status == "InsufficientLabels" and not few.degraded and few.value == 0.25
    none = performance_report(rule, labelled_accuracy(10, 90), FeedbackIndex(10), {"f1": 0.9}, None)
    assert none.status == "NoBaseline" and not none.degraded


def test_lower_is_better_metrics_drop_upwards() -> None:
    rule = PerformanceRule(metric="rmse", max_drop=5.0, min_labeled=3)
    labelled = Labelled(regression=True)
    labelled.actual, labelled.predicted = [10.0, 20.0, 30.0], [20.0, 30.0, 40.0]
    labelled.hours = [AT] * 3
    report = performance_report(rule, labelled, FeedbackIndex(10), {"rmse": 4.0}, None)
    assert report.value == pytest.approx(10.0) and report.drop == pytest.approx(6.0) and report.degraded
    wrong_task = performance_report(rule.model_copy(update={"metric": "accuracy"}), labelled,
                                    FeedbackIndex(10), {}, None)  # fmt: skip
    assert wrong_task.status == "NotApplicable"


def test_the_termination_summary_always_fits_four_kib() -> None:
    from kubeloop.contracts.monitoring import MonitorSummary, ScoreSummary  # noqa: PLC0415

    names = [f"a_rather_long_feature_name_number_{i:04d}" for i in range(1000)]
    summary = MonitorSummary(phase="Drifting", reason="DriftDetected", message="x" * 3000, time=AT, version=1,
                             features=[ScoreSummary(name=n, score=0.5, drifted=True) for n in names[:10]],
                             drifted=names, drifted_count=1000)  # fmt: skip
    text = summary.fitted()
    assert len(text.encode()) <= 4096
    kept = MonitorSummary.model_validate_json(text)
    assert kept.drifted_count == 1000 and kept.phase == "Drifting" and kept.features
    small = MonitorSummary(
        phase="Healthy", reason="NoDrift", message="ok", time=AT, version=1, drifted=names[:3]
    )
    assert MonitorSummary.model_validate_json(small.fitted()) == small
