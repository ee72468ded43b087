"""Children are written with server-side apply, one field manager, owned by their parent.

Deterministic names plus apply (create-or-update in one call) make reconciles idempotent: an
operator killed between two writes applies the same object again instead of creating a twin.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubernetes import client

from kubeloop.kube import FIELD_MANAGER
from kubeloop.kube.client import api_client
from kubeloop.planning.workloads import owned, owner_reference

__all__ = ["RecentApplies", "apply", "owned", "owner_reference"]

Obj = dict[str, Any]


# The kinds kubeloop creates; a kind missing here is a programming error, not a guess at English.
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "TrainingRun": "trainingruns",
    "ModelVersion": "modelversions",
}


def resource_path(obj: Obj) -> str:
    """The REST path of a namespaced object, e.g. /apis/batch/v1/namespaces/ns/jobs/name."""
    group_version = obj["apiVersion"]
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    meta = obj["metadata"]
    return f"{prefix}/namespaces/{meta['namespace']}/{PLURALS[obj['kind']]}/{meta['name']}"


def apply(obj: Obj) -> Obj:
    """Server-side apply `obj` as the kubeloop field manager, taking over conflicting fields."""
    api = api_client()
    method, url, headers, body, post = api.param_serialize(
        "PATCH",
        resource_path(obj),
        query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=json.dumps(obj),
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body, post)
    response.read()  # type: ignore[no-untyped-call]
    if response.status >= 400:
        raise client.ApiException(http_resp=response)
    return dict(json.loads(response.data or b"{}"))


class RecentApplies:
    """Which children were applied lately and with what content, so an unchanged one is not applied
    again within `period` seconds (after it, it is: that repairs hand edits and deletions)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._seen: dict[tuple[str, ...], tuple[str, float]] = {}

    @staticmethod
    def digest(obj: Obj) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()

    def due(self, key: tuple[str, ...], digest: str, now: float) -> bool:
        last = self._seen.get(key)
        return last is None or last[0] != digest or now - last[1] >= self.period

    def applied(self, key: tuple[str, ...], digest: str, now: float) -> None:
        # Entries past the period skip nothing: forgetting them keeps deleted owners' children out.
        for stale in [k for k, (_, at) in self._seen.items() if now - at >= self.period]:
            del self._seen[stale]
        self._seen[key] = (digest, now)

    def __len__(self) -> int:
        return len(self._seen)
