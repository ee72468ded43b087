"""What a ModelMonitor's reconcile reads besides its own status: the deployment it watches, the
stable version's artifacts, its CronJob and run Jobs, and the TrainingRuns it starts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeloop import API_GROUP, API_VERSION
from kubeloop.kube.client import api_client
from kubeloop.kube.jobs import job_state
from kubeloop.planning.jobs import JobState

Obj = dict[str, Any]


def get_custom(namespace: str, plural: str, name: str) -> Obj | None:
    try:
        found = client.CustomObjectsApi(api_client()).get_namespaced_custom_object(
            API_GROUP, API_VERSION, namespace, plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return dict(found)


def create_custom(plural: str, body: Obj) -> bool:
    """Create `body`; False when it exists already (deterministic names: a restarted operator that
    created it but never recorded it must not make a second one)."""
    try:
        client.CustomObjectsApi(api_client()).create_namespaced_custom_object(
            API_GROUP, API_VERSION, body["metadata"]["namespace"], plural, body
        )
    except ApiException as error:
        if error.status == 409:
            return False
        raise
    return True


def cronjob_annotation(namespace: str, name: str, key: str) -> str | None:
    """An annotation of the CronJob; None when the CronJob does not exist."""
    try:
        found = client.BatchV1Api(api_client()).read_namespaced_cron_job(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return str((found.metadata.annotations or {}).get(key, ""))


def jobs_after(
    namespace: str, selector: str, after: tuple[datetime, str] | None
) -> list[tuple[datetime, JobState]]:
    """(creation time, state) of the Jobs matching `selector` created after `after` (time, name);
    only those are looked at in detail (their pods' termination messages)."""
    found = client.BatchV1Api(api_client()).list_namespaced_job(namespace, label_selector=selector).items
    newer = sorted(
        (job.metadata.creation_timestamp, job.metadata.name)
        for job in found
        if after is None or (job.metadata.creation_timestamp, job.metadata.name) > after
    )
    states = []
    for created, name in newer:
        state = job_state(namespace, name)
        if state is not None:
            states.append((created, state))
    return states
