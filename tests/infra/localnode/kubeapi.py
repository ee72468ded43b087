"""The agent's only door to the API server: raw JSON in and out, camelCase as on the wire."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.infra.localnode.podspec import Obj

LEASE_NAMESPACE = "kube-node-lease"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubeApi:
    def __init__(self, kubeconfig: str) -> None:
        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)
        self.server = self.api_client.configuration.host
        self._lock = threading.Lock()

    @staticmethod
    def _json(response: Any) -> Obj:
        return dict(json.loads(response.data))

    def version(self) -> str:
        info = client.VersionApi(self.api_client).get_code(_preload_content=False)
        return str(self._json(info)["gitVersion"])

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        read = {
            "Secret": self.core.read_namespaced_secret,
            "ConfigMap": self.core.read_namespaced_config_map,
        }[kind]
        try:
            return self._json(read(name, namespace, _preload_content=False))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def service_account_token(
        self, namespace: str, account: str, audience: str | None, seconds: int, pod: Obj
    ) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else None,
                "expirationSeconds": seconds,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            },
        }
        response = self.core.create_namespaced_service_account_token(
            account, namespace, body, _preload_content=False
        )
        return str(self._json(response)["status"]["token"])

    def list_pods(self) -> tuple[list[Obj], str]:
        listing = self._json(self.core.list_pod_for_all_namespaces(_preload_content=False))
        return listing["items"], listing["metadata"]["resourceVersion"]

    def bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        # _preload_content=False sidesteps the client's known failure to deserialize a Binding reply.
        self.core.create_namespaced_binding(meta["namespace"], body, _preload_content=False)

    def patch_pod_status(self, pod: Obj, status: Obj) -> None:
        meta = pod["metadata"]
        self.core.patch_namespaced_pod_status(
            meta["name"], meta["namespace"], {"status": status}, _preload_content=False
        )

    def finalize_pod(self, pod: Obj) -> None:
        """The kubelet's last word on a pod: delete it for good once its containers are gone."""
        meta = pod["metadata"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        try:
            self.core.delete_namespaced_pod(
                meta["name"], meta["namespace"], body=body, _preload_content=False
            )
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def register_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        try:
            self.core.create_node(node, _preload_content=False)
        except ApiException as error:
            if error.status != 409:
                raise
            self.core.patch_node(name, {"metadata": node["metadata"]}, _preload_content=False)
        self.core.patch_node_status(name, {"status": node["status"]}, _preload_content=False)

    def patch_node_status(self, name: str, status: Obj) -> None:
        self.core.patch_node_status(name, {"status": status}, _preload_content=False)

    def renew_lease(self, node_name: str, node_uid: str, duration: int) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": node_name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}],
            },
            "spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration, "renewTime": micro_now()},
        }
        try:
            self.coordination.patch_namespaced_lease(
                node_name, LEASE_NAMESPACE, {"spec": body["spec"]}, _preload_content=False
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, body, _preload_content=False)

    def node_uid(self, name: str) -> str:
        return str(self._json(self.core.read_node(name, _preload_content=False))["metadata"]["uid"])


def retry(action: Any, attempts: int = 5, delay: float = 0.5) -> Any:
    """Retry an API call on conflicts and transient errors; the last error propagates."""
    for attempt in range(attempts):
        try:
            return action()
        except ApiException as error:
            if error.status in (404, 410) or attempt == attempts - 1:
                raise
        time.sleep(delay * (attempt + 1))
    return None
