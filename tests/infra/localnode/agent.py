"""The agent: registers the Node, keeps it Ready, binds pending pods, and runs a PodWorker each."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from kubernetes import watch
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from tests.infra.localnode import NODE_NAME
from tests.infra.localnode.images import ImageMap
from tests.infra.localnode.kubeapi import KubeApi, now
from tests.infra.localnode.logserver import LogServer
from tests.infra.localnode.network import PodNetwork
from tests.infra.localnode.podspec import Obj
from tests.infra.localnode.podworker import PodWorker
from tests.infra.localnode.relay import HostPortRelay

log = logging.getLogger("localnode")
LEASE_SECONDS, HEARTBEAT_SECONDS, STATUS_SECONDS = 40, 10, 60
PATH = "/usr/local/bin:/usr/bin:/bin"


class LocalNode:
    def __init__(self, kubeconfig: str, root: Path, images: ImageMap, host_ports: list[int]) -> None:
        self.api = KubeApi(kubeconfig)
        self.root, self.images = root, images
        self.workers: dict[str, PodWorker] = {}
        self.stopping = threading.Event()
        server = urlparse(self.api.server)
        self.network = PodNetwork()
        self.logs = LogServer(root / "pods", self.stopping)
        # Pods see the API server and the given host services at the same 127.0.0.1:port as we do.
        self.relay = HostPortRelay(sorted({server.port or 443, *host_ports}))
        venv_bin = str(Path(images.python).parent)
        # What every container sees, as a kubelet provides it: the API server as the in-cluster service.
        self.base_env = {
            "PATH": f"{venv_bin}:{PATH}",
            "KUBERNETES_SERVICE_HOST": server.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(server.port or 443),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(server.port or 443),
        }

    # -- node -------------------------------------------------------------------------------------
    def node_object(self) -> Obj:
        cpus, memory = os.cpu_count() or 1, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        capacity = {
            "cpu": str(cpus),
            "memory": f"{memory // 1024}Ki",
            "pods": "250",
            "ephemeral-storage": "100Gi",
        }
        version = self.api.version()
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubeloop.io/local-node": "true",
                },
            },
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": NODE_NAME},
                ],
                "conditions": [self._ready_condition()],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.logs.port}},
                "nodeInfo": {
                    "kubeletVersion": version,
                    "kubeProxyVersion": version,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "containerRuntimeVersion": "kubeloop-local://1",
                    "osImage": "kubeloop local node",
                    "kernelVersion": os.uname().release,
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            },
        }

    @staticmethod
    def _ready_condition() -> Obj:
        return {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "local node agent is running",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }

    def heartbeat(self) -> None:
        uid = self.api.node_uid(NODE_NAME)
        last_status = 0.0
        while not self.stopping.wait(0 if last_status == 0 else HEARTBEAT_SECONDS):
            try:
                self.api.renew_lease(NODE_NAME, uid, LEASE_SECONDS)
                if time.monotonic() - last_status >= STATUS_SECONDS:
                    self.api.patch_node_status(NODE_NAME, {"conditions": [self._ready_condition()]})
                    last_status = time.monotonic()
            except (ApiException, HTTPError) as error:
                log.warning("heartbeat failed: %s", error)

    # -- pods -------------------------------------------------------------------------------------
    def run(self) -> None:
        self.api.register_node(self.node_object())
        threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True).start()
        log.info("node %s registered; watching pods", NODE_NAME)
        while not self.stopping.is_set():
            try:
                pods, version = self.api.list_pods()
                self.sync(pods)
                self.watch(version)
            except (ApiException, HTTPError) as error:
                log.warning("pod watch interrupted (%s); listing again", getattr(error, "reason", error))
                self.stopping.wait(1)

    def watch(self, version: str) -> None:
        stream = watch.Watch()
        for event in stream.stream(
            self.api.core.list_pod_for_all_namespaces,
            resource_version=version,
            timeout_seconds=120,
            allow_watch_bookmarks=True,
        ):
            if self.stopping.is_set():
                stream.stop()
                return
            if event["type"] == "BOOKMARK":
                continue
            pod = event["raw_object"]
            if event["type"] == "DELETED":
                self.forget(pod)
            else:
                self.handle(pod)

    def sync(self, pods: list[Obj]) -> None:
        present = {pod["metadata"]["uid"] for pod in pods}
        for uid in list(self.workers):
            if uid not in present:
                self.workers.pop(uid).vanish()
        for pod in pods:
            self.handle(pod)

    def handle(self, pod: Obj) -> None:
        spec, uid = pod["spec"], pod["metadata"]["uid"]
        if not spec.get("nodeName"):
            self.schedule(pod)
        elif spec["nodeName"] == NODE_NAME:
            if uid in self.workers:
                self.workers[uid].update(pod)
            elif pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
                self.start_worker(pod)
            elif pod["metadata"].get("deletionTimestamp"):
                self.api.finalize_pod(pod)

    def schedule(self, pod: Obj) -> None:
        spec = pod["spec"]
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        if pod["metadata"].get("deletionTimestamp"):
            return
        labels = self.node_object()["metadata"]["labels"] if spec.get("nodeSelector") else {}
        if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
            return  # stays Pending, as with a scheduler that finds no fitting node
        try:
            self.api.bind(pod, NODE_NAME)
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def start_worker(self, pod: Obj) -> None:
        meta = pod["metadata"]
        directory = self.root / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        address, netns = self.network.attach()
        self.relay.open(netns)
        worker = PodWorker(
            pod=pod,
            api=self.api,
            images=self.images,
            directory=directory,
            network=(address, netns),
            base_env=self.base_env,
            release_network=self.release_network,
        )
        self.workers[meta["uid"]] = worker
        worker.start()

    def release_network(self, address: str, netns: str) -> None:
        self.relay.close(netns)
        self.network.detach(address)

    def forget(self, pod: Obj) -> None:
        worker = self.workers.pop(pod["metadata"]["uid"], None)
        if worker is not None:
            worker.vanish()

    def shutdown(self) -> None:
        """Stop every container this agent started; pods stay as they are in the API."""
        self.stopping.set()
        workers = list(self.workers.values())
        for worker in workers:
            worker.vanish()
        for worker in workers:
            worker.join(timeout=15)
        self.network.close()
        self.logs.close()
