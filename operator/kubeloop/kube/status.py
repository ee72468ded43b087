"""Status is written only here, through the status subresource, never together with spec."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubeloop import API_GROUP, API_VERSION
from kubeloop.kube.client import api_client


def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any],
                 resource_version: str | None = None) -> None:  # fmt: skip
    """Merge-patch `status`; lists (conditions) are replaced whole, which the planner intends.

    With `resource_version`, the write fails with 409 if the object changed since it was read, so
    a reconcile working from a stale copy never overwrites newer status.
    """
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, namespace, plural, name, body, _content_type="application/merge-patch+json"
    )
