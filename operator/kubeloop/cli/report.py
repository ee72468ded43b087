"""`kubeloop report <mmon>`: the latest monitor verdict, its top features, performance, retraining and
where the report is.

Everything comes from the ModelMonitor's status; when store access is configured (the
KUBELOOP_S3_* variables the workloads use), the full report.json adds data-quality figures and a
presigned link opens report.html in a browser for an hour.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from kubernetes import client
from kubernetes.client.rest import ApiException
from minio import Minio
from pydantic import ValidationError

from kubeloop import API_GROUP, API_VERSION
from kubeloop.cli.rollout import CommandError
from kubeloop.contracts.monitoring import MonitorReport
from kubeloop.kube.client import api_client
from kubeloop.planning.conditions import find
from kubeloop.store.client import ObjectMissing, Store, StoreSettings, StoreUnavailable
from kubeloop.store.uri import StoreUri

Obj = dict[str, Any]
PLURAL = "modelmonitors"
LINK_LIFETIME = timedelta(hours=1)


def read(namespace: str, name: str) -> Obj:
    try:
        found = client.CustomObjectsApi(api_client()).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, PLURAL, name
        )
    except ApiException as error:
        if error.status == 404:
            raise CommandError(f"no ModelMonitor {name} in namespace {namespace}") from None
        raise
    return dict(found)


def number(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4g}"


def _performance(performance: Obj | None) -> str:
    if not performance:
        return "not checked (no spec.performance)"
    verdict = "DEGRADED" if performance.get("degraded") else "ok"
    value, baseline = number(performance.get("value")), number(performance.get("baseline"))
    labelled = performance.get("labeledSamples", 0)
    return f"{performance.get('metric')} {value} vs {baseline} at training, {labelled} labelled ({verdict})"


def _retraining(status: Obj) -> str:
    count = status.get("retrainCount") or 0
    text = f"{count} so far"
    last = status.get("lastRetrain")
    if last:
        text += f"; last {last['trainingRun']['name']} at {last['time']} ({last.get('reason', '')})"
    condition = find(status.get("conditions") or [], "Retraining")
    if condition:
        text += f"; now: {condition['reason']}: {condition.get('message', '')}"
    return text


def report_text(monitor: Obj, details: MonitorReport | None = None, link: str | None = None) -> str:
    """The summary a person reads; `details` (report.json) and `link` when the store was reachable."""
    meta, spec, status = monitor["metadata"], monitor["spec"], monitor.get("status") or {}
    healthy = find(status.get("conditions") or [], "Healthy") or {}
    lines = [
        f"ModelMonitor {meta['namespace']}/{meta['name']} on ModelDeployment {spec['deployment']}: "
        f"{status.get('phase') or 'no verdict yet'} ({healthy.get('reason', '-')})",
        f"  {healthy.get('message', '')}",
    ]
    run = status.get("lastRun")
    if not run:
        scheduled = find(status.get("conditions") or [], "Scheduled") or {}
        lines.append(f"No run yet. {scheduled.get('message', '')}".rstrip())
        return "\n".join(lines)
    state = "" if run.get("succeeded", True) else " FAILED"
    lines.append(
        f"Last run:     {run['time']}{state} (job {run.get('job', '-')}), model v{run.get('version', '-')}, "
        f"{run.get('samples', 0)} rows"
    )
    drift = spec.get("drift") or {}
    lines.append(
        f"Drift score:  {number(status.get('driftScore'))} ({drift.get('method', 'psi')}, threshold "
        f"{drift.get('threshold', 0.2)}); drifted: {', '.join(status.get('driftedFeatures') or []) or 'none'}"
    )
    features = status.get("features") or []
    if features:
        width = max(len(f["name"]) for f in features) + 2
        lines.append("Top features:")
        lines.extend(
            f"  {f['name']:<{width}}{number(f['score']):>10}  {'DRIFT' if f.get('drifted') else 'ok'}"
            for f in features
        )
    lines.append(f"Performance:  {_performance(status.get('performance'))}")
    lines.append(f"Retraining:   {_retraining(status)}")
    if details is not None:
        quality = details.data_quality
        lines.append(
            f"Data quality: {quality.rows} rows, {sum(quality.out_of_range.values())} values outside the "
            f"training range, {sum(quality.unseen_categories.values())} unseen categories, "
            f"{sum(quality.missing_columns.values())} missing columns, {quality.bad_records} bad records"
        )
        if details.prediction is not None:
            lines.append(
                f"Predictions:  {details.prediction.method} {number(details.prediction.score)}"
                f"{' DRIFT' if details.prediction.drifted else ''}"
            )
    lines.append(f"Report:       {status.get('reportUri') or '-'}")
    if link:
        lines.append(f"Open:         {link}")
    return "\n".join(lines)


def presigned(settings: StoreSettings, location: str) -> str:
    uri = StoreUri.parse(location)
    url = urlparse(settings.endpoint)
    s3 = Minio(
        url.netloc,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=url.scheme == "https",
    )
    return str(s3.presigned_get_object(uri.bucket, uri.key, expires=LINK_LIFETIME))


def from_store(report_uri: str) -> tuple[MonitorReport | None, str | None]:
    """report.json and a link to report.html, when store access is configured and the store answers."""
    if not os.environ.get("KUBELOOP_S3_ENDPOINT") or not report_uri.startswith("s3://"):
        return None, None
    settings = StoreSettings.from_env()
    try:
        raw = Store(settings).get_bytes(report_uri.removesuffix("report.html") + "report.json")
        return MonitorReport.model_validate_json(raw), presigned(settings, report_uri)
    except (ObjectMissing, StoreUnavailable, ValidationError, ValueError):
        return None, None


def report(namespace: str, name: str) -> str:
    monitor = read(namespace, name)
    uri = (monitor.get("status") or {}).get("reportUri") or ""
    details, link = from_store(uri) if uri else (None, None)
    return report_text(monitor, details, link)
