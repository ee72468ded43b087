"""ModelVersions: found by the run that made them, created under the next free number."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubeloop import API_GROUP, API_VERSION
from kubeloop.api.v1alpha1.modelversion import version_name
from kubeloop.kube.client import api_client

PLURAL = "modelversions"
MAX_NUMBER_RACES = 20


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def versions(namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
    listing = _custom().list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL,
                                                      label_selector=label_selector)  # fmt: skip
    return list(listing["items"])


def version_made_by(namespace: str, run_uid_label: str, run_uid: str) -> str | None:
    found = versions(namespace, f"{run_uid_label}={run_uid}")
    return str(found[0]["metadata"]["name"]) if found else None


def create_next_version(namespace: str, model: str, labels: dict[str, str],
                        spec_for: Callable[[int], dict[str, Any]]) -> str:  # fmt: skip
    """Create `<model>-v<N>` with N one past the highest existing number; when another writer takes
    N first (two runs finishing together), the create fails with 409 and the next number is tried."""
    numbers = [int(v["spec"]["version"]) for v in versions(namespace) if v["spec"].get("model") == model]
    number = max(numbers, default=0) + 1
    for _ in range(MAX_NUMBER_RACES):
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "ModelVersion",
                "metadata": {"name": version_name(model, number), "namespace": namespace, "labels": labels},
                "spec": spec_for(number)}  # fmt: skip
        try:
            _custom().create_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, body)
        except ApiException as error:
            if error.status != 409:
                raise
            number += 1
            continue
        return version_name(model, number)
    raise RuntimeError(
        f"could not find a free version number for model {model} after {MAX_NUMBER_RACES} tries"
    )
