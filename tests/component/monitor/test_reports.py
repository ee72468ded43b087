"""The monitor over request logs written by the real model server: verdicts, figures that match an
independent computation, the HTML report, and windows that are empty or partly filled."""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from kubeloop.contracts.monitoring import MonitorReport, PerformanceRule
from kubeloop.contracts.profile import CategoricalProfile, NumericProfile, Profile
from kubeloop.store.client import Store
from tests.component.monitor.conftest import (
    FEATURES,
    TARGET,
    give_feedback,
    monitor_task,
    run_monitor,
    send,
)
from tests.component.serving.conftest import Server, TrainedModel
from tests.datasets import churn_frame
from tests.infra.minio_server import MinioServer


def profile_of(store: Store, model: TrainedModel) -> Profile:
    return Profile.model_validate_json(store.get_bytes(model.folder + "profile.json"))


def expected_psi(profile: NumericProfile, values: np.ndarray) -> float:
    """PSI written out independently: np.histogram on the reference edges, outer bins open."""
    edges = np.asarray(profile.edges)
    clipped = np.clip(values, edges[0], edges[-1])
    current, _ = np.histogram(clipped, bins=edges)
    p = np.maximum(np.asarray(profile.counts) / sum(profile.counts), 1e-4)
    q = np.maximum(current / current.sum(), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def feature(report: MonitorReport, name: str):  # type: ignore[no-untyped-def]
    (found,) = [f for f in report.features if f.name == name]
    return found


def test_traffic_like_training_is_healthy_and_every_figure_checks_out(
    serve: Callable[..., Server], churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path
) -> None:
    server = serve(churn_model)
    frame = churn_frame(800, seed=21)
    send(server, frame)
    server.terminate()  # flushes the request log
    done = run_monitor(monitor_task(server, minio), minio, tmp_path)
    assert done.code == 0, done.stderr + done.stdout
    assert done.summary["phase"] == "Healthy", done.summary
    assert done.summary["samples"] == 800 and done.summary["drifted"] == []
    report = done.report(store)
    assert (report.samples, report.requests, report.phase, report.reason) == (800, 20, "Healthy", "NoDrift")
    assert sorted(f.name for f in report.features) == sorted(FEATURES)
    assert all(f.score is not None and not f.drifted for f in report.features)
    assert report.drift_score == max(f.score or 0 for f in report.features)

    profile = profile_of(store, churn_model)
    for name in ("tenure_months", "monthly_charges", "support_tickets"):
        reference = profile.features[name]
        assert isinstance(reference, NumericProfile)
        values = frame[name].to_numpy(np.float64)
        got = feature(report, name)
        assert got.statistics["psi"] == pytest.approx(expected_psi(reference, values), abs=1e-6)
        ks = scipy_stats.ks_2samp(reference.sample, values)
        assert got.statistics["ks"] == pytest.approx(ks.statistic, abs=1e-6)
        outside = int(((values < reference.edges[0]) | (values > reference.edges[-1])).sum())
        assert got.out_of_range == outside == report.data_quality.out_of_range.get(name, 0)
    contract = profile.features["contract"]
    assert isinstance(contract, CategoricalProfile)
    observed = frame["contract"].value_counts()
    table = np.array(
        [[contract.counts[c] for c in contract.counts], [observed.get(c, 0) for c in contract.counts]]
    )
    chi2 = scipy_stats.chi2_contingency(table, correction=False)
    assert feature(report, "contract").statistics["chi2_pvalue"] == pytest.approx(chi2.pvalue, abs=1e-6)
    missing = feature(report, "total_charges")
    assert missing.missing_rate == pytest.approx(frame["total_charges"].isna().mean(), abs=1e-6)
    assert report.prediction is not None and report.prediction.kind == "categorical"
    assert report.prediction.samples == 800 and not report.prediction.drifted

    html = store.get_bytes(report.report_uri).decode()
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert " src=" not in html and " href=" not in html  # self-contained: nothing to fetch
    assert html.count("<svg") >= len(FEATURES) + 1  # a histogram per feature and one for the predictions
    assert all(name in html for name in FEATURES) and "Healthy" in html
    assert html.count('class="pass">pass') >= len(FEATURES)
    assert report.report_uri.startswith(f"s3://{minio.bucket}/monitors/test/{report.monitor}/")


def test_shifted_traffic_is_drifting_on_the_shifted_features(
    serve: Callable[..., Server], churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path
) -> None:
    server = serve(churn_model)
    send(server, churn_frame(800, seed=22, shift=1.0))
    server.terminate()
    done = run_monitor(monitor_task(server, minio), minio, tmp_path)
    assert done.code == 0 and done.summary["phase"] == "Drifting", done.summary
    drifted = set(done.summary["drifted"])
    assert {"tenure_months", "monthly_charges", "total_charges", "support_tickets"} <= drifted
    assert "payment_method" not in drifted and "senior_citizen" not in drifted  # not shifted
    report = done.report(store)
    assert report.reason == "DriftDetected" and report.features[0].drifted
    assert done.summary["features"][0]["name"] == report.features[0].name
    html = store.get_bytes(report.report_uri).decode()
    assert "Drifting" in html and 'class="fail">drift' in html


def labels(frame_rows: int, seed: int) -> tuple[list[str], list[str]]:
    frame = churn_frame(frame_rows, seed=seed)
    truth = ["true" if v else "false" for v in frame[TARGET]]
    return truth, ["false" if v == "true" else "true" for v in truth]


@pytest.mark.parametrize("wrong", [False, True], ids=["true-labels", "wrong-labels"])
def test_feedback_measures_live_accuracy_and_wrong_labels_degrade(  # noqa: PLR0917
    serve: Callable[..., Server], churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path,
    wrong: bool,
) -> None:  # fmt: skip
    server = serve(churn_model)
    sent = send(server, churn_frame(600, seed=23))
    truth, flipped = labels(600, 23)
    give_feedback(server, sent[:500], (flipped if wrong else truth)[:500])  # 100 rows never labelled
    server.terminate()
    rule = PerformanceRule(metric="accuracy", max_drop=0.1, min_labeled=100)
    done = run_monitor(monitor_task(server, minio, performance=rule), minio, tmp_path)
    assert done.code == 0, done.stderr
    performance = done.report(store).performance
    assert performance is not None
    assert (performance.labeled, performance.eligible, performance.feedback_items) == (500, 600, 500)
    assert performance.baseline == churn_model.card.metrics["accuracy"]
    assert performance.value is not None and performance.drop is not None
    if wrong:
        assert done.summary["phase"] == "Degraded" and performance.degraded
        assert performance.value < 0.5 and done.summary["performance"]["degraded"]
    else:
        assert done.summary["phase"] == "Healthy" and not performance.degraded
        assert abs(performance.drop) < 0.1
    assert performance.over_time and sum(p.labeled for p in performance.over_time) == 500


def test_labels_not_due_yet_are_not_counted(
    serve: Callable[..., Server], churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path
) -> None:
    server = serve(churn_model)
    sent = send(server, churn_frame(300, seed=24))
    give_feedback(server, sent, labels(300, 24)[1])  # all wrong, but the labels are not due for an hour
    server.terminate()
    rule = PerformanceRule(metric="accuracy", max_drop=0.1, min_labeled=100, label_delay_seconds=3600)
    done = run_monitor(monitor_task(server, minio, performance=rule), minio, tmp_path)
    assert done.summary["phase"] == "Healthy", done.summary
    performance = done.report(store).performance
    assert performance is not None and performance.status == "InsufficientLabels"
    assert (performance.labeled, performance.eligible, performance.degraded) == (0, 0, False)


def test_an_empty_window_is_insufficient_data_not_an_alarm(
    churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path,
    serve: Callable[..., Server],
) -> None:  # fmt: skip
    server = serve(churn_model)  # serves, but nobody calls it
    server.terminate()
    rule = PerformanceRule(metric="accuracy", max_drop=0.1)
    done = run_monitor(monitor_task(server, minio, performance=rule), minio, tmp_path)
    assert done.code == 0, done.stderr
    assert (done.summary["phase"], done.summary["reason"], done.summary["samples"]) == (
        "InsufficientData", "TooFewSamples", 0)  # fmt: skip
    report = done.report(store)
    assert report.files == 0 and report.drifted_features == [] and report.prediction is None
    assert all(f.score is None for f in report.features)
    assert "InsufficientData" in store.get_bytes(report.report_uri).decode()


def test_a_partial_window_counts_only_its_own_requests(
    serve: Callable[..., Server], churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path
) -> None:
    server = serve(churn_model)
    send(server, churn_frame(240, seed=25))
    middle = datetime.now(UTC)
    time.sleep(1.2)
    send(server, churn_frame(400, seed=26, shift=1.0))
    server.terminate()
    earlier = run_monitor(monitor_task(server, minio, until=middle.isoformat()), minio, tmp_path)
    assert earlier.summary["samples"] == 240 and earlier.summary["phase"] == "Healthy", earlier.summary
    end = datetime.now(UTC)
    seconds = int((end - middle).total_seconds())  # starts less than 1 s after `middle`
    task = monitor_task(server, minio, until=end.isoformat(), window_seconds=seconds, min_samples=500)
    later = run_monitor(task, minio, tmp_path)
    assert later.summary["samples"] == 400
    # Fewer rows than minSamples: shifted, yet no verdict; the scores are still in the report.
    assert later.summary["phase"] == "InsufficientData" and later.summary["drifted"] == []
    report = later.report(store)
    assert report.drift_score is not None and report.drift_score > 0.2
    assert all(not f.drifted for f in report.features)


def test_unreadable_files_and_odd_records_are_counted_not_fatal(
    serve: Callable[..., Server], churn_model: TrainedModel, store: Store, minio: MinioServer, tmp_path: Path
) -> None:
    server = serve(churn_model)
    send(server, churn_frame(400, seed=27))
    server.terminate()
    deployment = server.env["KUBELOOP_DEPLOYMENT"]
    now = datetime.now(UTC)
    folder = f"s3://{minio.bucket}/logs/test/{deployment}/v1/dt={now:%Y-%m-%d}/hr={now:%H}/"
    store.put_bytes(folder + "other-pod-1-000001.jsonl.gz", b"not gzip at all")
    odd = (
        b'{"requestId": "x1", "time": "' + now.isoformat().encode() + b'", "rows": 2, '
        b'"inputs": {"tenure_months": [3, "three"], "shoe_size": [42, 43]}, '
        b'"outputs": {"label": ["false", "true"]}}\n'
        b"{not json\n"
    )
    store.put_bytes(folder + "other-pod-1-000002.jsonl.gz", gzip.compress(odd))
    done = run_monitor(monitor_task(server, minio), minio, tmp_path)
    assert done.code == 0 and done.summary["phase"] == "Healthy", done.summary
    quality = done.report(store).data_quality
    assert (quality.rows, quality.bad_files, quality.bad_records) == (402, 1, 1)
    assert quality.unexpected_columns == ["shoe_size"] and quality.invalid_values == {"tenure_months": 1}
    assert quality.missing_columns["contract"] == 2


def test_a_missing_profile_or_a_bad_task_fails_for_good(
    churn_model: TrainedModel, minio: MinioServer, tmp_path: Path, serve: Callable[..., Server]
) -> None:
    server = serve(churn_model)
    task = monitor_task(server, minio, model_folder=f"s3://{minio.bucket}/runs/none/none/none/")
    missing = run_monitor(task, minio, tmp_path)
    assert missing.code == 2
    assert (missing.summary["outcome"], missing.summary["reason"]) == ("Failed", "ProfileMissing")
    bad = run_monitor('{"namespace": "test"}', minio, tmp_path)
    assert bad.code == 2 and bad.summary["reason"] == "InvalidTask"
    assert "monitor" in bad.summary["message"]
