"""Kubernetes Events about our resources (core/v1, so `kubectl describe` and `get events` show them)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from kubeloop.kube import FIELD_MANAGER
from kubeloop.kube.client import api_client

REPORTING_INSTANCE = socket.gethostname()


def post_event(resource: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = resource["metadata"]
    now = datetime.now(UTC)
    body = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": f"kubeloop.io/{FIELD_MANAGER}",
        "reportingInstance": REPORTING_INSTANCE,
        "action": "Reconcile",
        "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "count": 1,
    }
    client.CoreV1Api(api_client()).create_namespaced_event(meta["namespace"], body, _preload_content=False)
