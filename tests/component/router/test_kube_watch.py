"""The router in Kubernetes mode against the real API server, with only the permissions the contract
grants (contracts/router.py RBAC_RULES) through a real ServiceAccount token: it follows the routing
ConfigMap and the backends' EndpointSlices as they are created, changed and deleted.

The slices list fake, non-loopback addresses (10.255.0.x): the test only reads the router's view
(GET /router/config, /router/ready, /stats) and never sends a prediction, so nothing connects there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from kubeloop.contracts.router import RBAC_RULES
from kubeloop.contracts.routing import ROUTING_KEY
from tests.component.router.conftest import CANDIDATE, STABLE, table
from tests.component.serving.conftest import REPO
from tests.infra.fixtures import LOG_SOURCES, Cluster
from tests.infra.processes import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.cluster
CONFIGMAP = "churn-routing"


def routing_configmap(routing: dict[str, Any] | str) -> dict[str, Any]:
    text = routing if isinstance(routing, str) else json.dumps(routing)
    return {"metadata": {"name": CONFIGMAP}, "data": {ROUTING_KEY: text}}


def endpoint_slice(name: str, service: str, endpoints: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in endpoints],
    }


def router_token(cluster: Cluster, namespace: str) -> str:
    """A ServiceAccount with exactly the contract's Role, and a token for it."""
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "router"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "router"}, "rules": RBAC_RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "router"},
            "subjects": [{"kind": "ServiceAccount", "name": "router", "namespace": namespace}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "router"},
        },
    )
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    answer = core.create_namespaced_service_account_token(
        "router", namespace, request, _preload_content=False
    )
    return str(json.loads(answer.data)["status"]["token"])


@dataclass
class KubeRouter:
    port: int
    process: ManagedProcess
    token_file: Path
    token: str  # the router account's real token
    http: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str) -> tuple[int, Any]:
        self.process.check_alive()
        response = self.http.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)
        return response.status_code, response.json()


@pytest.fixture
def kube_router(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Callable[[str], KubeRouter]]:
    """kube_router(token): the router following `namespace`, starting with `token` (or the real one)."""
    assert cluster.plane.pki is not None
    started: list[KubeRouter] = []

    def start(token: str = "") -> KubeRouter:
        assert cluster.plane.pki is not None
        real = router_token(cluster, namespace)
        token_file = tmp_path / "token"
        token_file.write_text(token or real)
        port = free_port()
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO / "operator"),
            "KUBELOOP_ROUTING_CONFIGMAP": CONFIGMAP,
            "KUBELOOP_NAMESPACE": namespace,
            "KUBELOOP_KUBE_API": cluster.plane.server,
            "KUBELOOP_KUBE_TOKEN_FILE": str(token_file),
            "KUBELOOP_KUBE_CA_FILE": str(cluster.plane.pki.ca_cert),
            "KUBELOOP_BIND_HOST": "127.0.0.1",
            "KUBELOOP_PORT": str(port),
        }
        argv = [sys.executable, "-m", "kubeloop.router"]
        process = ManagedProcess("kube-router", argv, tmp_path / "router.log", env=env).start()
        LOG_SOURCES["kube-router"] = process.log
        router = KubeRouter(port, process, token_file, real)
        started.append(router)
        wait_until(lambda: router.get("/router/live")[0] == 200, 30, "router live")
        return router

    yield start
    for router in started:
        router.process.stop()
    LOG_SOURCES.pop("kube-router", None)


def test_the_router_follows_the_configmap_and_the_endpointslices(
    cluster: Cluster, namespace: str, kube_router: Callable[..., KubeRouter]
) -> None:
    core, discovery = client.CoreV1Api(cluster.api), client.DiscoveryV1Api(cluster.api)
    get = kube_router().get

    def view() -> dict[str, Any]:
        document: dict[str, Any] = get("/router/config")[1]
        return document

    def addresses(service: str) -> list[str] | None:
        backend = view()["backends"].get(service)
        return None if backend is None else list(backend["addresses"])

    def follows(check: Callable[[], bool], what: str) -> None:
        wait_until(check, 30, what, interval=0.1)

    # No ConfigMap yet: alive, not ready.
    assert get("/router/ready") == (503, {"ready": False, "reason": "NoRoutingTable"})
    assert view()["source"] == f"configmap:{namespace}/{CONFIGMAP}"

    core.create_namespaced_config_map(namespace, routing_configmap(table(candidate=False, epoch="e1")))
    follows(lambda: (view()["table"] or {}).get("epoch") == "e1", "the first table")
    assert get("/router/ready") == (503, {"ready": False, "reason": "NoStableAddress"})
    assert get("/stats")[1]["epoch"] == "e1"

    stable_slice = endpoint_slice("churn-v1-a", STABLE, [("10.255.0.1", True)])
    discovery.create_namespaced_endpoint_slice(namespace, stable_slice)
    follows(lambda: addresses(STABLE) == ["10.255.0.1:8080"], "the stable slice")
    assert get("/router/ready")[0] == 200

    # A pod turns unready, another appears: only ready ones are used.
    changed = endpoint_slice("churn-v1-a", STABLE, [("10.255.0.1", False), ("10.255.0.3", True)])
    discovery.replace_namespaced_endpoint_slice("churn-v1-a", namespace, changed)
    follows(lambda: addresses(STABLE) == ["10.255.0.3:8080"], "the slice update")

    # A new step: shadow to a candidate, a new epoch.
    shadow = table(mode="Shadow", shadowPercent=50, epoch="e2")
    core.replace_namespaced_config_map(CONFIGMAP, namespace, routing_configmap(shadow))
    follows(lambda: view()["table"]["mode"] == "Shadow", "the shadow table")
    assert view()["table"]["candidate"]["service"] == CANDIDATE and get("/stats")[1]["epoch"] == "e2"
    discovery.create_namespaced_endpoint_slice(
        namespace, endpoint_slice("churn-v2-a", CANDIDATE, [("10.255.0.7", True), ("10.255.0.8", True)])
    )
    follows(lambda: addresses(CANDIDATE) == ["10.255.0.7:8080", "10.255.0.8:8080"], "the candidate slice")

    # A bad table is reported and the previous one stays.
    core.replace_namespaced_config_map(CONFIGMAP, namespace, routing_configmap('{"mode": "Blue"}'))
    follows(lambda: bool(view()["problem"]), "the bad table reported")
    assert view()["table"]["epoch"] == "e2" and "mode" in view()["problem"]

    # Back to stable only: the candidate's slices are no longer followed.
    core.replace_namespaced_config_map(
        CONFIGMAP, namespace, routing_configmap(table(candidate=False, epoch="e3"))
    )
    follows(
        lambda: view()["table"]["epoch"] == "e3" and addresses(CANDIDATE) is None, "the candidate dropped"
    )
    assert view()["problem"] is None

    discovery.delete_namespaced_endpoint_slice("churn-v1-a", namespace)
    follows(lambda: addresses(STABLE) == [], "the deleted slice")
    assert get("/router/ready") == (503, {"ready": False, "reason": "NoStableAddress"})


def test_a_refused_token_is_retried_until_the_api_server_accepts_it(
    cluster: Cluster, namespace: str, kube_router: Callable[..., KubeRouter]
) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_config_map(namespace, routing_configmap(table(candidate=False, epoch="e1")))
    router = kube_router("not-a-token")
    wait_until(lambda: "401" in router.process.log.read_text(), 30, "the refusal logged")
    assert router.get("/router/ready") == (503, {"ready": False, "reason": "NoRoutingTable"})
    router.token_file.write_text(router.token)  # as the kubelet rotates a projected token
    wait_until(lambda: router.get("/stats")[0] == 200, 60, "the table read with the new token")
    assert router.get("/stats")[1]["epoch"] == "e1"
    assert "needs get/list/watch on configmaps and endpointslices" in router.process.log.read_text()
