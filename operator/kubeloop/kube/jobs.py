"""Jobs: created once (their pod template is immutable), read back with their pods' results."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeloop.kube.client import api_client
from kubeloop.planning.conditions import timestamp
from kubeloop.planning.jobs import OOM_KILLED, JobState, parse_message

# Waiting reasons that are just a pod starting, not a problem worth showing.
STARTING = {"ContainerCreating", "PodInitializing"}


def create_job(job: dict[str, Any]) -> None:
    """Create `job` unless it exists: a restarted operator must not make a second one."""
    meta = job["metadata"]
    try:
        client.BatchV1Api(api_client()).create_namespaced_job(meta["namespace"], job, _preload_content=False)
    except ApiException as error:
        if error.status != 409:
            raise


def job_state(namespace: str, name: str) -> JobState | None:
    batch = client.BatchV1Api(api_client())
    try:
        job = batch.read_namespaced_job(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return _state(namespace, job)


def labelled_jobs(namespace: str, selector: str, skip_pods: Callable[[str], bool] = lambda name: False,
                  ) -> list[JobState]:  # fmt: skip
    """Every Job matching the label selector, oldest first, with its pods' results (except for the
    Jobs `skip_pods` names: their results are already recorded)."""
    jobs = _listed(namespace, selector)
    return [_state(namespace, job, with_pods=not skip_pods(job.metadata.name)) for job in jobs]


def jobs_after(namespace: str, selector: str, after: tuple[datetime, str] | None
               ) -> list[tuple[datetime, JobState]]:  # fmt: skip
    """(creation time, state) of the Jobs matching the label selector created after `after` (time,
    name), oldest first; only those are looked at in detail (their pods' termination messages)."""
    newer = [job for job in _listed(namespace, selector) if after is None or _key(job) > after]
    return [(job.metadata.creation_timestamp, _state(namespace, job)) for job in newer]


def _key(job: Any) -> tuple[datetime, str]:
    return job.metadata.creation_timestamp, job.metadata.name


def _listed(namespace: str, selector: str) -> list[Any]:
    """The Jobs matching the label selector, oldest first."""
    jobs = client.BatchV1Api(api_client()).list_namespaced_job(namespace, label_selector=selector).items
    return sorted(jobs, key=_key)


def cron_job_annotation(namespace: str, name: str, key: str) -> str | None:
    """The annotation `key` of a CronJob ("" when it has none), or None when there is no such CronJob."""
    try:
        cron = client.BatchV1Api(api_client()).read_namespaced_cron_job(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return str((cron.metadata.annotations or {}).get(key, ""))


def _state(namespace: str, job: Any, with_pods: bool = True) -> JobState:
    core = client.CoreV1Api(api_client())
    name = job.metadata.name
    conditions = {c.type: c for c in job.status.conditions or [] if c.status == "True"}
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    selector = f"batch.kubernetes.io/job-name={name}"
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items if with_pods else []
    pods.sort(key=lambda pod: pod.metadata.creation_timestamp)
    results, waiting, oom_killed = [], [], []
    for pod in pods:
        for status in pod.status.container_statuses or []:
            ended = status.state.terminated
            parsed = parse_message(ended.message) if ended else None
            if parsed is not None:
                results.append(parsed)
            killed = _oom_killed(pod, status)
            if killed:
                oom_killed.append(killed)
            stuck = status.state.waiting
            if stuck and stuck.reason not in STARTING:
                waiting.append(f"pod {pod.metadata.name}: {stuck.reason}: {stuck.message or ''}".rstrip(": "))
    finished = job.status.completion_time or (failed.last_transition_time if failed else None)
    return JobState(
        name=name,
        complete="Complete" in conditions,
        failed=failed is not None,
        reason=failed.reason if failed else "",
        message=failed.message if failed else "",
        results=results,
        waiting=waiting,
        oom_killed=oom_killed,
        uid=job.metadata.uid or "",
        labels=dict(job.metadata.labels or {}),
        created=_time(job.metadata.creation_timestamp),
        start_time=_time(job.status.start_time),
        completion_time=_time(finished),
        active=job.status.active or 0,
        failed_indexes=job.status.failed_indexes or "",
    )


def _oom_killed(pod: Any, status: Any) -> str:
    """The line "pod P: container C (memory limit L)" when the container last ended out of memory."""
    ended = status.state.terminated or (status.last_state.terminated if status.last_state else None)
    if ended is None or ended.reason != OOM_KILLED:
        return ""
    spec = next((c for c in pod.spec.containers if c.name == status.name), None)
    limit = ((spec.resources.limits or {}).get("memory") if spec and spec.resources else None) or "none"
    return f"pod {pod.metadata.name}: container {status.name} (memory limit {limit})"


def _time(moment: datetime | None) -> str | None:
    return timestamp(moment) if moment is not None else None
