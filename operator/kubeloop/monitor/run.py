"""One monitor run: profile and card in, window scanned, verdict out, report written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubeloop.contracts.model import ModelCard
from kubeloop.contracts.monitoring import FeatureDrift, MonitorReport, MonitorTask, Phase
from kubeloop.contracts.profile import Profile
from kubeloop.monitor import html
from kubeloop.monitor.drift import feature_drift
from kubeloop.monitor.join import performance_report
from kubeloop.monitor.reading import Window
from kubeloop.monitor.scan import Scan, scan_window
from kubeloop.store.client import Store
from kubeloop.store.layout import CARD_FILE, PROFILE_FILE, monitor_prefix

REASONS: dict[Phase, str] = {
    "Healthy": "NoDrift",
    "Drifting": "DriftDetected",
    "Degraded": "PerformanceDropped",
    "InsufficientData": "TooFewSamples",
}


def window_of(task: MonitorTask, now: datetime) -> Window:
    end = (task.until or now).astimezone(UTC)
    return Window(end - timedelta(seconds=task.window_seconds), end)


def chosen_features(task: MonitorTask, profile: Profile, card: ModelCard) -> tuple[list[str], list[str]]:
    """(features to check, requested names the model does not have)."""
    inputs = [c.name for c in card.signature.inputs if c.name in profile.features]
    if not task.drift.features:
        return inputs, []
    wanted = list(dict.fromkeys(task.drift.features))
    return [n for n in wanted if n in profile.features], [n for n in wanted if n not in profile.features]


def verdict(report: MonitorReport) -> tuple[Phase, str]:
    rule = report.rule
    if report.samples < report.min_samples:
        return "InsufficientData", (
            f"{report.samples} logged rows in the window, at least {report.min_samples} needed; "
            "scores below are for information only"
        )
    performance = report.performance
    if performance is not None and performance.degraded:
        return "Degraded", performance.message
    drifted = report.drifted_features
    if drifted or (report.prediction is not None and report.prediction.drifted):
        names = ", ".join(drifted[:10]) + (f" and {len(drifted) - 10} more" if len(drifted) > 10 else "")
        what = f"{len(drifted)} of {len(report.features)} features drifted ({names})" if drifted else ""
        if report.prediction is not None and report.prediction.drifted:
            what = f"{what}; predictions drifted" if what else "predictions drifted"
        return "Drifting", f"{what} on {report.samples} rows ({rule.method} > {rule.threshold:g})"
    return (
        "Healthy",
        f"{len(report.features)} features within {rule.method} {rule.threshold:g} on {report.samples} rows",
    )


def build_report(task: MonitorTask, scan: Scan, card: ModelCard, window: Window, *, now: datetime,
                 unknown: list[str]) -> MonitorReport:  # fmt: skip
    features = [feature_drift(name, acc, task.drift) for name, acc in scan.features.items()]
    features.sort(key=lambda f: (f.score is None, -(f.score or 0.0), f.name))
    prediction: FeatureDrift | None = (
        feature_drift("prediction", scan.prediction, task.drift) if scan.prediction.rows else None
    )
    report = MonitorReport(
        namespace=task.namespace, monitor=task.monitor, deployment=task.deployment, model=task.model,
        version=task.version, time=now, window_start=window.start, window_end=window.end,
        phase="Healthy", reason="", message="", samples=scan.rows, requests=scan.requests,
        files=scan.reads.files, min_samples=task.min_samples, rule=task.drift, features=features,
        prediction=prediction, data_quality=scan.quality(), unknown_features=unknown,
    )  # fmt: skip
    scores = [f.score for f in features if f.score is not None]
    report.drift_score = max(scores) if scores else None
    report.drifted_features = [f.name for f in features if f.drifted]
    if task.performance is not None and scan.labelled is not None and scan.feedback is not None:
        report.performance = performance_report(
            task.performance, scan.labelled, scan.feedback, card.metrics, card.signature.classes
        )
    if report.samples < task.min_samples:  # no verdict on too little data: nothing is flagged
        for feature in [*features, *([prediction] if prediction else [])]:
            feature.drifted, feature.reason = False, ""
        report.drifted_features = []
        if report.performance is not None:
            report.performance.degraded = False
    report.phase, report.message = verdict(report)
    report.reason = REASONS[report.phase]
    if unknown:
        report.message += f"; not in the model, ignored: {', '.join(unknown[:10])}"
    return report


def run(task: MonitorTask, store: Store, now: datetime | None = None) -> MonitorReport:
    """Everything one scheduled run does; raises ObjectMissing / StoreUnavailable for the caller."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    profile = Profile.model_validate_json(store.get_bytes(task.model_folder + PROFILE_FILE))
    card = ModelCard.model_validate_json(store.get_bytes(task.model_folder + CARD_FILE))
    features, unknown = chosen_features(task, profile, card)
    window = window_of(task, now)
    scan = scan_window(store, task, profile, features, window=window, now=now)
    report = build_report(task, scan, card, window, now=now, unknown=unknown)
    folder = f"{task.store_root}{monitor_prefix(task.namespace, task.monitor, now)}"
    report.json_uri, report.report_uri = folder + "report.json", folder + "report.html"
    store.put_bytes(report.report_uri, html.render(report).encode(), "text/html; charset=utf-8")
    store.put_bytes(report.json_uri, report.model_dump_json(by_alias=True, indent=1).encode(),
                    "application/json")  # fmt: skip
    return report
