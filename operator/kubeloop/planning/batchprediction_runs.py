"""A BatchPrediction's runs as its status shows them: read off each run's Job, its shards' termination
messages and its notification Job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kubeloop.api.v1alpha1 import BatchPredictionSpec
from kubeloop.contracts.batch import MANIFEST_FILE, NotifyResult, RunSummary, ShardResult, run_folder
from kubeloop.planning.batchprediction_children import VERSION_LABEL
from kubeloop.planning.jobs import JobState, failure, index_list, last_result

Obj = dict[str, Any]


# --- runs ------------------------------------------------------------------------------------------------


def shard_results(job: JobState) -> dict[int, ShardResult]:
    """The newest result of each shard (a retried shard's last pod reports last)."""
    latest: dict[int, ShardResult] = {}
    for raw in job.results:
        try:
            result = ShardResult.model_validate(raw)
        except ValidationError:
            continue
        latest[result.shard] = result
    return latest


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (_parse(end) - _parse(start)).total_seconds()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_status(spec: BatchPredictionSpec, job: JobState) -> Obj:
    """A run as status shows it, from its Job and its shards' termination messages."""
    results = shard_results(job)
    scored = [r for r in results.values() if r.outcome == "Succeeded"]
    version = next((r.version for r in results.values() if r.version), None)
    if version is None and job.labels.get(VERSION_LABEL, "").isdigit():
        version = int(job.labels[VERSION_LABEL])
    phase = "Succeeded" if job.complete else "Failed" if job.failed else "Running"
    folder = run_folder(spec.output.uri, job.name)
    status: Obj = {
        "name": job.name,
        "phase": phase,
        "rowsIn": sum(r.rows_in for r in scored),
        "rowsOut": sum(r.rows_out for r in scored),
        "rejects": sum(r.rejects for r in scored),
        "outputUri": folder,
        "manifestUri": folder + MANIFEST_FILE,
    }
    optional = {
        "version": version,
        "startTime": job.start_time or job.created,
        "completionTime": job.completion_time if phase != "Running" else None,
    }
    status |= {key: value for key, value in optional.items() if value is not None}
    duration = _seconds(status.get("startTime"), status.get("completionTime"))
    if duration is not None:
        status["durationSeconds"] = round(duration, 1)
    if phase == "Failed":
        failed = sorted(
            set(index_list(job.failed_indexes)) | {s for s, r in results.items() if r.outcome == "Failed"}
        )
        status["failedShards"] = failed
        status["message"] = _failure_message(job, results, failed)[:4096]
    elif phase == "Succeeded":
        status["message"] = (
            f"scored {status['rowsOut']} of {status['rowsIn']} rows ({status['rejects']} "
            f"rejected) with {spec.model} v{version} in {spec.shards} shard(s)"
        )
    else:
        done = len(scored)
        waiting = f"; waiting: {'; '.join(job.waiting)}" if job.waiting else ""
        status["message"] = f"{done} of {spec.shards} shard(s) done{waiting}"[:4096]
    return status


def _failure_message(job: JobState, results: dict[int, ShardResult], failed: list[int]) -> str:
    parts = []
    for shard in failed:
        result = results.get(shard)
        if result is not None and result.outcome == "Failed":
            parts.append(f"shard {shard} failed: {result.reason}: {result.message}")
        else:
            parts.append(f"shard {shard} failed without a result (its pod ended before writing one)")
    if job.oom_killed:
        parts.append("{}: {}".format(*failure(job, "", "")))
    if (job.reason and job.reason not in ("FailedIndexes", "MaxFailedIndexesExceeded")) or not parts:
        parts.append(f"the Job failed: {job.reason}: {job.message}".rstrip(": "))
    return "; ".join(parts)


def summary_of(bp: Obj, spec: BatchPredictionSpec, run: Obj, job: JobState) -> RunSummary:
    sha = next((r.sha256 for r in shard_results(job).values() if r.sha256), None)
    return RunSummary(
        namespace=bp["metadata"]["namespace"],
        batch_prediction=bp["metadata"]["name"],
        run=run["name"],
        phase=run["phase"],
        model=spec.model,
        version=run.get("version"),
        sha256=sha,
        rows_in=run["rowsIn"],
        rows_out=run["rowsOut"],
        rejects=run["rejects"],
        output_uri=run["outputUri"],
        manifest_uri=run["manifestUri"],
        start_time=run.get("startTime"),
        completion_time=run.get("completionTime"),
        duration_seconds=run.get("durationSeconds"),
        failed_shards=run.get("failedShards", []),
        message=run.get("message", ""),
    )


def notification_status(job: JobState | None) -> Obj:
    if job is None:
        return {"phase": "Pending", "attempts": 0, "message": "the notification Job is being created"}
    result = last_result(job, NotifyResult)
    status: Obj = {"attempts": len(job.results)}
    if result is not None:
        status |= {k: v for k, v in (("webhook", result.webhook), ("email", result.email)) if v}
        status["message"] = result.message[:4096]
    if job.complete:
        status["phase"] = "Skipped" if result is not None and result.reason == "Skipped" else "Sent"
        status["message"] = status.get("message") or "delivered"
    elif job.failed:
        status["phase"] = "Failed"
        why = result.message if result is not None else f"{job.reason}: {job.message}"
        waiting = f"; {'; '.join(job.waiting)}" if job.waiting else ""
        status["message"] = f"not delivered after {max(len(job.results), 1)} attempt(s): {why}{waiting}"[
            :4096
        ]
    else:
        status["phase"] = "Pending"
        if job.waiting:
            status["message"] = ("waiting: " + "; ".join(job.waiting))[:4096]
    return status


def job_object(bp: Obj, job: JobState) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job.name, "uid": job.uid, "namespace": bp["metadata"]["namespace"]},
    }
