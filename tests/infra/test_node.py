"""The real node under the real control plane: what the product's pods rely on, checked on its own.

containerd runs the pods (runc, a CNI bridge), kube-proxy routes Service addresses, CoreDNS answers
cluster names, and the kubelet serves exec, logs and port-forward through the API server. Pods run
the base image built here (`python:3.11-slim-bookworm`), under the restricted securityContext.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from tests.infra.fixtures import Cluster
from tests.infra.node.node import node_name
from tests.infra.processes import free_port, wait_until
from tests.infra.stack import Stack

pytestmark = pytest.mark.cluster
PY_IMAGE = "python:3.11-slim-bookworm"
RESTRICTED = {
    "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}  # fmt: skip
HTTP_SERVER = "python -m http.server --bind $(POD_IP) 8080"


def container(command: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": PY_IMAGE, "imagePullPolicy": "Never", "command": command,
            "securityContext": RESTRICTED, **extra}  # fmt: skip


def pod(name: str, command: list[str], restart: str = "Never", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [container(command, **extra)], "restartPolicy": restart,
                     "terminationGracePeriodSeconds": 2}}  # fmt: skip


def pod_ip_env() -> list[dict[str, Any]]:
    return [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def wait_pod(core: client.CoreV1Api, namespace: str, name: str, phases: set[str],
             timeout: float = 120) -> client.V1Pod:  # fmt: skip
    found: list[client.V1Pod] = []

    def reached() -> bool:
        found[:] = [core.read_namespaced_pod(name, namespace)]
        return found[0].status.phase in phases

    wait_until(reached, timeout, f"pod {namespace}/{name} to reach {phases}")
    return found[0]


def wait_ready(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    def ready() -> bool:
        conditions = core.read_namespaced_pod(name, namespace).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    wait_until(ready, 120, f"pod {namespace}/{name} to be Ready")
    return core.read_namespaced_pod(name, namespace)


def run_to_end(core: client.CoreV1Api, namespace: str, name: str, script: str) -> client.V1ContainerStatus:
    core.create_namespaced_pod(namespace, pod(name, ["python", "-c", script]))
    found = wait_pod(core, namespace, name, {"Succeeded", "Failed"})
    return found.status.container_statuses[0]


def test_the_node_is_a_kubelet_on_containerd(cluster: Cluster, stack: Stack) -> None:
    node = client.CoreV1Api(cluster.api).read_node(node_name(0))
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    addresses = {a.type: a.address for a in node.status.addresses}
    assert stack.network is not None and addresses["InternalIP"] == stack.network.nodes[0].ip


def test_root_filesystem_is_read_only_and_the_user_is_the_one_asked_for(
    cluster: Cluster, namespace: str
) -> None:
    script = """
import json, os
try:
    open("/written", "w")
    result = "written"
except OSError as error:
    result = error.strerror
open("/dev/termination-log", "w").write(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "write": result}))
"""
    status = run_to_end(client.CoreV1Api(cluster.api), namespace, "rofs", script)
    assert status.state.terminated.exit_code == 0, status.state.terminated.message
    assert json.loads(status.state.terminated.message) == {
        "uid": 65532, "gid": 65532, "write": "Read-only file system"}  # fmt: skip


def test_a_container_over_its_memory_limit_is_oom_killed(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    grow = "chunks = []\nwhile True: chunks.append(bytearray(16 << 20))"
    limits = {"requests": {"memory": "32Mi"}, "limits": {"memory": "64Mi"}}
    core.create_namespaced_pod(namespace, pod("hog", ["python", "-c", grow], resources=limits))
    found = wait_pod(core, namespace, "hog", {"Succeeded", "Failed"})
    terminated = found.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


def test_pod_ip_from_the_downward_api_is_bound_and_answers_from_the_host(
    cluster: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api)
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    core.create_namespaced_pod(namespace, pod("web", ["sh", "-c", HTTP_SERVER], restart="Always",
                                              env=pod_ip_env(), readinessProbe=probe))  # fmt: skip
    ip = wait_ready(core, namespace, "web").status.pod_ip
    with urllib.request.urlopen(f"http://{ip}:8080/", timeout=5) as response:
        assert response.status == 200


def test_a_service_name_resolves_and_answers_from_another_pod(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    core.create_namespaced_pod(namespace, pod("web", ["sh", "-c", HTTP_SERVER], restart="Always",
                                              env=pod_ip_env(), readinessProbe=probe))  # fmt: skip
    core.create_namespaced_service(namespace, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})  # fmt: skip
    wait_ready(core, namespace, "web")
    script = f"""
import json, socket, urllib.request
name = "web.{namespace}.svc.cluster.local"
with urllib.request.urlopen(f"http://{{name}}/", timeout=10) as response:
    status = response.status
answer = {{"address": socket.gethostbyname(name), "status": status}}
open("/dev/termination-log", "w").write(json.dumps(answer))
"""
    status = run_to_end(core, namespace, "client", script)
    assert status.state.terminated.exit_code == 0, status.state.terminated.message
    answer = json.loads(status.state.terminated.message)
    service = core.read_namespaced_service("web", namespace)
    assert answer == {"address": service.spec.cluster_ip, "status": 200}


def test_exec_logs_and_port_forward_go_through_the_kubelet(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    command = f"echo started as $(id -u); {HTTP_SERVER}".replace("$(POD_IP)", "0.0.0.0")
    core.create_namespaced_pod(
        namespace,
        pod(
            "web",
            ["sh", "-c", command],
            restart="Always",
            readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        ),
    )
    wait_ready(core, namespace, "web")
    exec_id = cluster.kubectl("exec", "-n", namespace, "web", "--", "id", "-u")
    assert exec_id.stdout.strip() == "65532"
    assert "started as 65532" in cluster.kubectl("logs", "-n", namespace, "web").stdout
    port = free_port()
    argv = [*cluster.plane.kubectl_argv(), "port-forward", "-n", namespace, "pod/web", f"{port}:8080"]
    forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, 30,
                   "kubectl port-forward to listen")  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_a_restricted_namespace_refuses_a_root_pod(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    root = {
        "metadata": {"name": "root"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": PY_IMAGE,
                    "command": ["sleep", "1"],
                    "securityContext": {"runAsUser": 0},
                }
            ]
        },
    }
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(namespace, root)
    assert refused.value.status == 403
    assert "violates PodSecurity" in refused.value.body
    core.create_namespaced_pod(namespace, pod("fine", ["python", "-c", "pass"]))
    assert wait_pod(core, namespace, "fine", {"Succeeded", "Failed"}).status.phase == "Succeeded"
