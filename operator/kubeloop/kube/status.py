"""Status is written only here, through the status subresource, never together with spec."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubeloop import API_GROUP, API_VERSION
from kubeloop.kube.client import api_client


def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge-patch `status`; lists (conditions) are replaced whole, which the planner intends."""
    client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
        API_GROUP,
        API_VERSION,
        namespace,
        plural,
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )
