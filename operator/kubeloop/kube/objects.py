"""Our own resources read and created by name, where absence (or prior existence) is an answer."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeloop import API_GROUP, API_VERSION
from kubeloop.kube.client import api_client

Obj = dict[str, Any]


def get_custom(namespace: str, plural: str, name: str) -> Obj | None:
    """A kubeloop.io object, or None when there is none by that name."""
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
