"""Jobs: created once (their pod template is immutable), read back with their pods' results."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeloop.kube.client import api_client
from kubeloop.planning.jobs import JobState, parse_message

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
    batch, core = client.BatchV1Api(api_client()), client.CoreV1Api(api_client())
    try:
        job = batch.read_namespaced_job(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    conditions = {c.type: c for c in job.status.conditions or [] if c.status == "True"}
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={name}").items
    pods.sort(key=lambda pod: pod.metadata.creation_timestamp)
    results, waiting = [], []
    for pod in pods:
        for status in pod.status.container_statuses or []:
            ended = status.state.terminated
            parsed = parse_message(ended.message) if ended else None
            if parsed is not None:
                results.append(parsed)
            stuck = status.state.waiting
            if stuck and stuck.reason not in STARTING:
                waiting.append(f"pod {pod.metadata.name}: {stuck.reason}: {stuck.message or ''}".rstrip(": "))
    return JobState(
        name=name,
        complete="Complete" in conditions,
        failed=failed is not None,
        reason=failed.reason if failed else "",
        message=failed.message if failed else "",
        results=results,
        waiting=waiting,
    )
