"""The local node against the real control plane: Deployments, Jobs, env, RBAC, deletion, refusals."""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until

pytestmark = pytest.mark.cluster
PY_IMAGE = "python:3.11-slim"
HTTP_SERVER = "python -m http.server --bind $(KUBELOOP_BIND_HOST) 8080"


def pod_spec(command: list[str], **extra: object) -> dict[str, object]:
    container = {"name": "main", "image": PY_IMAGE, "command": command, **extra.pop("container", {})}  # type: ignore[dict-item]
    return {"containers": [container], "terminationGracePeriodSeconds": 5, **extra}


def job(name: str, command: list[str], backoff_limit: int = 0) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"spec": pod_spec(command, restartPolicy="Never")},
        },
    }


def wait_pod(
    core: client.CoreV1Api, namespace: str, name: str, phases: set[str], timeout: float = 60
) -> client.V1Pod:
    found: list[client.V1Pod] = []

    def reached() -> bool:
        found[:] = [core.read_namespaced_pod(name, namespace)]
        return found[0].status.phase in phases

    wait_until(reached, timeout, f"pod {namespace}/{name} to reach {phases}")
    return found[0]


def job_pods(core: client.CoreV1Api, namespace: str, job_name: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items)


def job_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> bool:
    conditions = batch.read_namespaced_job_status(name, namespace).status.conditions or []
    return any(c.type == kind and c.status == "True" for c in conditions)


def test_deployment_of_two_http_servers_becomes_available_with_distinct_addresses(
    cluster: Cluster, namespace: str
) -> None:
    apps, core, discovery = (
        client.AppsV1Api(cluster.api),
        client.CoreV1Api(cluster.api),
        client.DiscoveryV1Api(cluster.api),
    )
    labels = {"app": "web"}
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": pod_spec(
                        ["sh", "-c", HTTP_SERVER],
                        container={
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "readinessProbe": probe,
                        },
                    ),
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )

    wait_until(
        lambda: (
            (apps.read_namespaced_deployment_status("web", namespace).status.available_replicas or 0) == 2
        ),
        90,
        "deployment web to have 2 available replicas",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    addresses = {pod.status.pod_ip for pod in pods}
    # Own addresses from the node's pod network: EndpointSlices refuse loopback ones.
    assert len(addresses) == 2
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("10.192.0.0/10") for a in addresses)

    def slice_addresses() -> set[str]:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=web"
        )
        return {a for s in slices.items for e in s.endpoints or [] if e.conditions.ready for a in e.addresses}

    wait_until(lambda: slice_addresses() == addresses, 30, "the EndpointSlice to list both pods")
    for address in addresses:
        with urllib.request.urlopen(f"http://{address}:8080/", timeout=5) as response:
            assert response.status == 200


def test_job_termination_message_is_read_from_pod_status(cluster: Cluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(cluster.api), client.CoreV1Api(cluster.api)
    script = "import json; open('/dev/termination-log','w').write(json.dumps({'rows': 42, 'ok': True}))"
    batch.create_namespaced_job(namespace, job("writes-message", ["python", "-c", script]))
    wait_until(lambda: job_condition(batch, namespace, "writes-message", "Complete"), 60, "job Complete")
    (pod,) = job_pods(core, namespace, "writes-message")
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0 and terminated.reason == "Completed"
    assert json.loads(terminated.message) == {"rows": 42, "ok": True}


def test_failing_job_ends_failed_after_its_backoff_limit(cluster: Cluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(cluster.api), client.CoreV1Api(cluster.api)
    batch.create_namespaced_job(
        namespace, job("fails", ["python", "-c", "raise SystemExit(1)"], backoff_limit=1)
    )
    wait_until(lambda: job_condition(batch, namespace, "fails", "Failed"), 120, "job Failed")
    pods = job_pods(core, namespace, "fails")
    assert len(pods) == 2  # the first try and one retry: backoffLimit 1
    assert all(p.status.container_statuses[0].state.terminated.exit_code == 1 for p in pods)
    reason = next(
        c.reason
        for c in batch.read_namespaced_job_status("fails", namespace).status.conditions
        if c.type == "Failed"
    )
    assert reason == "BackoffLimitExceeded"


def test_pod_sees_env_from_secret_and_configmap_volume(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}}
    )
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "conf"}, "data": {"mode": "canary"}})
    script = (
        "import os; mode = open('/etc/conf/mode').read(); env = os.environ; "
        "open('/dev/termination-log','w').write(env['TOKEN'] + '|' + mode + '|' + env['GREETING'])"
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "reader"},
            "spec": pod_spec(
                ["python", "-c", script],
                restartPolicy="Never",
                volumes=[{"name": "conf", "configMap": {"name": "conf"}}],
                container={
                    "env": [
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                        {"name": "GREETING", "value": "hi-$(TOKEN)"},
                    ],
                    "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf", "readOnly": True}],
                },
            ),
        },
    )
    pod = wait_pod(core, namespace, "reader", {"Succeeded", "Failed"})
    assert pod.status.container_statuses[0].state.terminated.message == "s3cr3t|canary|hi-s3cr3t"
    assert not os.path.exists("/etc/conf/mode"), "the volume must be visible only inside the pod"


def test_service_account_rbac_holds_inside_the_pod(cluster: Cluster, namespace: str) -> None:
    core, rbac = client.CoreV1Api(cluster.api), client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"k": "v"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "hidden"}, "stringData": {"k": "v"}})
    script = f"""
import json
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_incluster_config()
core = client.CoreV1Api()
result = {{"configmap": core.read_namespaced_config_map("settings", "{namespace}").data}}
try:
    core.read_namespaced_secret("hidden", "{namespace}")
    result["secret"] = "read"
except ApiException as error:
    result["secret"] = error.status
open("/dev/termination-log", "w").write(json.dumps(result))
"""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "rbac"},
            "spec": pod_spec(["python", "-c", script], restartPolicy="Never", serviceAccountName="reader"),
        },
    )
    pod = wait_pod(core, namespace, "rbac", {"Succeeded", "Failed"})
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0, terminated.message
    assert json.loads(terminated.message) == {"configmap": {"k": "v"}, "secret": 403}


def _pid(pod: client.V1Pod) -> int:
    return int(pod.status.container_statuses[0].container_id.removeprefix("local://"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("ignores_sigterm", [False, True], ids=["exits-on-sigterm", "ignores-sigterm"])
def test_deleting_a_pod_stops_its_process(cluster: Cluster, namespace: str, ignores_sigterm: bool) -> None:
    core = client.CoreV1Api(cluster.api)
    trap = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " if ignores_sigterm else ""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "sleeper"},
            "spec": pod_spec(
                ["python", "-c", trap + "import time; time.sleep(600)"], terminationGracePeriodSeconds=3
            ),
        },
    )
    pod = wait_pod(core, namespace, "sleeper", {"Running"})
    pid = _pid(pod)
    assert _pid_alive(pid)
    core.delete_namespaced_pod("sleeper", namespace)
    # Grace is 3 s; allow scheduling slack but demand the process be gone, then the pod.
    wait_until(lambda: not _pid_alive(pid), 3 + 10, f"pid {pid} to end")

    def pod_gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_until(pod_gone, 20, "the pod object to be finalized")


def test_unmapped_image_gets_a_clear_waiting_reason_and_the_agent_keeps_working(
    cluster: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "nginx"}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}},
    )

    def waiting_reason() -> str | None:
        statuses = core.read_namespaced_pod("nginx", namespace).status.container_statuses or []
        return statuses[0].state.waiting.reason if statuses and statuses[0].state.waiting else None

    wait_until(lambda: waiting_reason() == "ImageNotMapped", 30, "ImageNotMapped")
    waiting = core.read_namespaced_pod("nginx", namespace).status.container_statuses[0].state.waiting
    assert "nginx:1.27" in waiting.message and "no local runtime" in waiting.message
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "after"},
            "spec": pod_spec(["python", "-c", "print('still here')"], restartPolicy="Never"),
        },
    )
    assert wait_pod(core, namespace, "after", {"Succeeded", "Failed"}).status.phase == "Succeeded"


def test_restricted_namespace_rejects_a_privileged_pod(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api)
    name = "restricted-check"
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    try:
        with pytest.raises(ApiException) as refused:
            core.create_namespaced_pod(
                name,
                {
                    "metadata": {"name": "root"},
                    "spec": pod_spec(["sleep", "1"], container={"securityContext": {"privileged": True}}),
                },
            )
        assert refused.value.status == 403
        message = json.loads(refused.value.body)["message"]
        assert 'violates PodSecurity "restricted:latest"' in message
        assert 'privileged (container "main" must not set securityContext.privileged=true)' in message
        assert core.list_namespaced_pod(name).items == []
    finally:
        core.delete_namespace(name)


def test_kubectl_logs_reads_the_container_output(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    body = {"metadata": {"name": "talker"}, "spec": pod_spec(["python", "-c", "print('one'); print('two')"])}
    body["spec"]["restartPolicy"] = "Never"  # type: ignore[index]
    core.create_namespaced_pod(namespace, body)
    wait_pod(core, namespace, "talker", {"Succeeded"})
    assert cluster.kubectl("logs", "-n", namespace, "talker").stdout == "one\ntwo\n"
    assert cluster.kubectl("logs", "-n", namespace, "talker", "--tail=1").stdout == "two\n"


def test_init_containers_run_in_order_before_the_main_container(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    append = "import sys; open('/work/order','a').write(sys.argv[1])"  # /work hides the repo here
    mount = [{"name": "work", "mountPath": "/work"}]
    init = [
        {
            "name": f"init-{n}",
            "image": PY_IMAGE,
            "command": ["python", "-c", append, n],
            "volumeMounts": mount,
        }
        for n in ("1", "2")
    ]
    report = "open('/dev/termination-log','w').write(open('/work/order').read())"
    body = {"metadata": {"name": "ordered"}, "spec": pod_spec(
        ["python", "-c", report], restartPolicy="Never", initContainers=init,
        volumes=[{"name": "work", "emptyDir": {}}], container={"volumeMounts": mount})}  # fmt: skip
    core.create_namespaced_pod(namespace, body)
    pod = wait_pod(core, namespace, "ordered", {"Succeeded", "Failed"})
    assert [s.state.terminated.exit_code for s in pod.status.init_container_statuses] == [0, 0]
    assert pod.status.container_statuses[0].state.terminated.message == "12"


def test_failing_liveness_probe_restarts_the_container(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    liveness = {"exec": {"command": ["python", "-c", "raise SystemExit(1)"]}, "periodSeconds": 1,
                "failureThreshold": 1}  # fmt: skip
    body = {"metadata": {"name": "unhealthy"}, "spec": pod_spec(
        ["python", "-c", "import time; time.sleep(600)"], container={"livenessProbe": liveness},
        terminationGracePeriodSeconds=1)}  # fmt: skip
    core.create_namespaced_pod(namespace, body)

    def restarted() -> bool:
        statuses = core.read_namespaced_pod("unhealthy", namespace).status.container_statuses or []
        return bool(statuses) and statuses[0].restart_count >= 1

    wait_until(restarted, 60, "a liveness restart")
    status = core.read_namespaced_pod("unhealthy", namespace).status.container_statuses[0]
    assert status.last_state.terminated is not None and status.last_state.terminated.exit_code == 143


def test_on_failure_pods_restart_until_the_container_succeeds(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    # Fails on the first run, succeeds on the second: the emptyDir survives container restarts.
    script = (
        "import os, sys; seen = os.path.exists('/scratch/ran'); open('/scratch/ran', 'w').close(); "
        "sys.exit(0 if seen else 3)"
    )
    body = {"metadata": {"name": "flaky"}, "spec": pod_spec(
        ["python", "-c", script], restartPolicy="OnFailure", volumes=[{"name": "scratch", "emptyDir": {}}],
        container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]})}  # fmt: skip
    core.create_namespaced_pod(namespace, body)
    pod = wait_pod(core, namespace, "flaky", {"Succeeded", "Failed"})
    status = pod.status.container_statuses[0]
    assert pod.status.phase == "Succeeded"
    assert status.restart_count == 1 and status.last_state.terminated.exit_code == 3
