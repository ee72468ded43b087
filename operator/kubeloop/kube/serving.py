"""What a ModelDeployment's reconcile reads and writes besides its own status: its model's
versions, its children's readiness, the routers' statistics, retired children and version stages."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from kubeloop import API_GROUP, API_VERSION
from kubeloop.contracts.routing import ROUTER_PORT, RouterStats, merge
from kubeloop.kube.client import api_client
from kubeloop.kube.events import post_event
from kubeloop.kube.registry import PLURAL as VERSIONS
from kubeloop.kube.registry import versions
from kubeloop.kube.status import patch_status
from kubeloop.planning.modeldeployment_children import DEPLOYMENT_LABEL, VERSION_LABEL, version_child_name
from kubeloop.planning.modelversion import enter_stage

Obj = dict[str, Any]
log = logging.getLogger("kubeloop.serving")
STATS_TIMEOUT_SECONDS = 2.0
STAGE_WRITE_TRIES = 5


def model_versions(namespace: str, model: str) -> list[Obj]:
    return [v for v in versions(namespace) if (v.get("spec") or {}).get("model") == model]


def server_readiness(namespace: str, mdep: str) -> dict[int, int]:
    """Ready pods of each version's model-server Deployment (the keys: versions whose Deployment exists)."""
    found = client.AppsV1Api(api_client()).list_namespaced_deployment(
        namespace, label_selector=f"{DEPLOYMENT_LABEL}={mdep},app.kubernetes.io/component=server"
    )
    return {int(d.metadata.labels[VERSION_LABEL]): int(d.status.ready_replicas or 0) for d in found.items}


def router_readiness(namespace: str, mdep: str) -> int:
    try:
        found = client.AppsV1Api(api_client()).read_namespaced_deployment(mdep, namespace)
    except ApiException as error:
        if error.status == 404:
            return 0
        raise
    return int(found.status.ready_replicas or 0)


def router_addresses(namespace: str, mdep: str) -> list[str]:
    """Ready router pod addresses, from the router Service's EndpointSlices."""
    slices = client.DiscoveryV1Api(api_client()).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={mdep}"
    )
    addresses: list[str] = []
    for endpoint_slice in slices.items:
        for endpoint in endpoint_slice.endpoints or []:
            if endpoint.conditions is None or endpoint.conditions.ready is not False:
                addresses.extend(endpoint.addresses)
    return addresses


def router_stats(addresses: Iterable[str], epoch: str) -> RouterStats | None:
    """The routers' statistics of `epoch`, summed; None when no router answered for it."""
    answers: list[RouterStats] = []
    for address in addresses:
        host = f"[{address}]" if ":" in address else address
        try:
            with urllib.request.urlopen(
                f"http://{host}:{ROUTER_PORT}/stats", timeout=STATS_TIMEOUT_SECONDS
            ) as r:
                answers.append(RouterStats.model_validate_json(r.read()))
        except (OSError, ValidationError) as error:  # a router that is starting or gone: the rest still count
            log.info("no statistics from router %s: %s", address, error)
    merged = merge(answers, epoch)
    return merged if merged.pods else None


def delete_version_children(namespace: str, mdep: str, version: int) -> None:
    """Remove a retired version's Deployment, Service, HPA and PodDisruptionBudget (absent ones are fine)."""
    name = version_child_name(mdep, version)
    deletes = (
        client.AppsV1Api(api_client()).delete_namespaced_deployment,
        client.CoreV1Api(api_client()).delete_namespaced_service,
        client.AutoscalingV2Api(api_client()).delete_namespaced_horizontal_pod_autoscaler,
        client.PolicyV1Api(api_client()).delete_namespaced_pod_disruption_budget,
    )
    for delete in deletes:
        try:
            delete(name, namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise


def set_stage(version: Obj, stage: str, reason: str, by: str, deployment: str) -> None:
    """Move a ModelVersion to `stage` with its audit entry; a concurrent write is re-read and retried."""
    meta = version["metadata"]
    custom = client.CustomObjectsApi(api_client())
    for _ in range(STAGE_WRITE_TRIES):
        current = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, meta["namespace"], VERSIONS,
                                                      meta["name"])  # fmt: skip
        status = dict(current.get("status") or {})
        event = enter_stage(status, stage, f"{reason} (deployment {deployment})", by, datetime.now(UTC))
        if event is None:
            return
        serving = [d for d in status.get("deployments") or [] if d != deployment]
        status["deployments"] = [*serving, deployment] if stage in ("Staging", "Production") else serving
        try:
            patch_status(VERSIONS, meta["namespace"], meta["name"], status,
                         current["metadata"]["resourceVersion"])  # fmt: skip
        except ApiException as error:
            if error.status == 409:
                continue
            raise
        try:
            post_event(current, event.type, event.reason, event.message)
        except ApiException as error:
            log.warning("could not post Event %s: %s", event.reason, error.reason)
        return
    raise RuntimeError(f"could not record stage {stage} on {meta['name']}: it kept changing")
