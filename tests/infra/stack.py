"""The whole local stack: images, the stack's network, MinIO, the control plane, the real node(s) and
CoreDNS, started in that order.

Used by the pytest session fixtures and by `make dev-up`, so both run exactly the same thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client

from tests.infra.controlplane import ControlPlane, scratch_dir
from tests.infra.minio_server import MinioServer
from tests.infra.node import claims, dns
from tests.infra.node.images import NodeImages, node_images
from tests.infra.node.network import StackNetwork
from tests.infra.node.node import CLUSTER_DNS, Node
from tests.infra.processes import ManagedProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "kubeloop-system"


def disk_dir(prefix: str) -> Path:
    """Node directories hold unpacked images and pod volumes: on disk, never on /dev/shm."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))


@dataclass
class Stack:
    root: Path = field(default_factory=lambda: scratch_dir("kubeloop-stack-"))
    node_root: Path = field(default_factory=lambda: disk_dir("kubeloop-nodes-"))
    keep_root: bool = False
    node_count: int = 1
    network: StackNetwork | None = None
    minio: MinioServer | None = None
    plane: ControlPlane | None = None
    nodes: list[Node] = field(default_factory=list)
    images: NodeImages | None = None
    _own_network: bool = False
    _own_minio: bool = False

    def start(self) -> Stack:
        """Start what is missing: a network and MinIO passed in (shared with component tests) are reused."""
        try:
            self.images = node_images()  # built or reused before anything runs, so nothing waits on it
            if self.network is None:
                self.network, self._own_network = StackNetwork().create(), True
            if self.minio is None:
                self.minio = MinioServer(host=self.network.host_ip, root=self.root / "minio", keep_root=True)
                self.minio.start()
                self._own_minio = True
            self.plane = ControlPlane(
                host_ip=self.network.host_ip, root=self.root / "cluster", keep_root=True
            )
            self.plane.start()
            for number in range(self.node_count):
                node = Node(self.network, number, self.node_root / f"node-{number}", self.plane,
                            self.images.pause, self.images.images)  # fmt: skip
                self.nodes.append(node)
                node.start()
            self._start_dns()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def host_ip(self) -> str:
        """The stack's bridge address: a server a test starts here is reached by pods at it."""
        assert self.network is not None
        return self.network.host_ip

    def _start_dns(self) -> None:
        assert self.plane is not None and self.images is not None
        documents = dns.manifests(self.images.coredns, CLUSTER_DNS)
        self.plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(documents))
        apps = client.AppsV1Api(self.plane.api_client())

        def available() -> bool:
            for node in self.nodes:
                for process in node.processes:
                    process.check_alive()
            status = apps.read_namespaced_deployment("coredns", "kube-system").status
            return bool(status.available_replicas)

        wait_until(available, 180, "CoreDNS to become available")

    def helm(self, *args: str) -> str:
        """The test binaries' helm on this stack's admin kubeconfig, with its own cache and config."""
        assert self.plane is not None
        plane = self.plane
        homes = {f"HELM_{d}_HOME": str(plane.root / f"helm-{d.lower()}") for d in ("CACHE", "CONFIG", "DATA")}
        argv = [str(plane.bins.require("helm").helm), f"--kubeconfig={plane.kubeconfig}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, **homes})  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done.stdout

    def install_operator(self) -> None:
        """CRDs from crds/, then the operator from the Helm chart (charts/kubeloop) as the release
        `kubeloop` in kubeloop-system (PodSecurity `restricted`, the namespace rendered by the chart):
        S3 keys in the Secret kubeloop-s3, the endpoint and bucket as chart values, which the chart
        puts in the operator's settings ConfigMap. Re-running it upgrades the release."""
        assert self.plane is not None and self.minio is not None
        kubectl = self.plane.kubectl
        chart, ns = REPO / "charts" / "kubeloop", f"--namespace={OPERATOR_NAMESPACE}"
        kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        namespace = self.helm("template", "kubeloop", str(chart), ns, "--set=namespace.create=true",
                              "--show-only=templates/namespace.yaml")  # fmt: skip
        kubectl("apply", "-f", "-", input=namespace)
        secret = kubectl(
            "create", "secret", "generic", "kubeloop-s3", ns, "--dry-run=client", "-o=yaml",
            f"--from-literal=accessKey={self.minio.access_key}",
            f"--from-literal=secretKey={self.minio.secret_key}",
        ).stdout  # fmt: skip
        kubectl("apply", "-f", "-", input=secret)
        self.helm("upgrade", "--install", "kubeloop", str(chart), ns, "--set=crds.enabled=false",
                  f"--set=s3.endpoint={self.minio.url}", f"--set=s3.bucket={self.minio.bucket}")  # fmt: skip
        kubectl("rollout", "status", ns, "deployment/kubeloop-operator", "--timeout=180s")

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every process of the stack, in start order."""
        minio = [self.minio.process] if self.minio and self.minio.process else []
        plane = self.plane.processes if self.plane else []
        return [*minio, *plane, *(p for node in self.nodes for p in node.processes)]

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.nodes.clear()
        if self.plane is not None:
            self.plane.stop()
        if self.minio is not None and self._own_minio:
            self.minio.stop()
        if self.network is not None and self._own_network:
            self.network.destroy()
            claims.release(self.network.index)
        if not self.keep_root:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.node_root, ignore_errors=True)
