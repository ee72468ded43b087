"""The whole local stack: MinIO, the control plane and the local node, started in that order.

Used by the pytest session fixtures and by `make dev-up`, so both run exactly the same thing.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from tests.infra.controlplane import ControlPlane, scratch_dir
from tests.infra.localnode import NODE_NAME
from tests.infra.minio_server import MinioServer
from tests.infra.processes import ManagedProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "kubeloop-system"


def start_local_node(plane: ControlPlane, host_ports: list[int]) -> ManagedProcess:
    """The agent as its own process; `host_ports` are relayed into every pod (e.g. MinIO's)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}:{REPO}"}
    argv = [
        sys.executable, "-m", "tests.infra.localnode", f"--kubeconfig={plane.kubeconfig}",
        f"--root={plane.root / 'node'}", *(f"--host-port={port}" for port in host_ports),
    ]  # fmt: skip
    node = ManagedProcess("local-node", argv, plane.logs / "local-node.log", env=env, cwd=REPO).start()
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig)))

    def node_ready() -> bool:
        node.check_alive()
        conditions = core.read_node(NODE_NAME).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    wait_until(node_ready, 60, "the local node to register Ready")
    return node


@dataclass
class Stack:
    root: Path = field(default_factory=lambda: scratch_dir("kubeloop-stack-"))
    keep_root: bool = False
    minio: MinioServer | None = None
    plane: ControlPlane | None = None
    node: ManagedProcess | None = None
    _own_minio: bool = False

    def start(self) -> Stack:
        """Start what is missing: a MinIO passed in (shared with component tests) is reused."""
        try:
            if self.minio is None:
                self.minio = MinioServer(root=self.root / "minio", keep_root=True).start()
                self._own_minio = True
            self.plane = ControlPlane(root=self.root / "cluster", keep_root=True).start()
            self.node = start_local_node(self.plane, [self.minio.port])
        except BaseException:
            self.stop()
            raise
        return self

    def install_operator(self) -> None:
        """CRDs from crds/, then the operator as a pod from manifests/base, as the chart installs it:
        S3 keys in the Secret kubeloop-s3, the endpoint and bucket in its settings ConfigMap."""
        assert self.plane is not None and self.minio is not None
        kubectl = self.plane.kubectl
        kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        kubectl("apply", "-f", str(REPO / "manifests" / "base" / "operator.yaml"))
        ns = f"--namespace={OPERATOR_NAMESPACE}"
        for kind, name, pairs in (
            ("secret", "kubeloop-s3", {"accessKey": self.minio.access_key,
                                       "secretKey": self.minio.secret_key}),
            ("configmap", "kubeloop-operator-settings", {
                "KUBELOOP_S3_ENDPOINT": self.minio.url, "KUBELOOP_S3_BUCKET": self.minio.bucket}),
        ):  # fmt: skip
            literals = [f"--from-literal={key}={value}" for key, value in pairs.items()]
            extra = ["generic"] if kind == "secret" else []
            manifest = kubectl(
                "create", kind, *extra, name, ns, *literals, "--dry-run=client", "-o=yaml"
            ).stdout
            kubectl("apply", "-f", "-", input=manifest)
        kubectl("rollout", "status", ns, "deployment/kubeloop-operator", "--timeout=120s")

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every process of the stack, in start order."""
        minio = [self.minio.process] if self.minio and self.minio.process else []
        plane = self.plane.processes if self.plane else []
        return [*minio, *plane, *([self.node] if self.node else [])]

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop(grace=30)  # the agent stops its pods and removes their namespaces
        if self.plane is not None:
            self.plane.stop()
        if self.minio is not None and self._own_minio:
            self.minio.stop()
        if not self.keep_root:
            shutil.rmtree(self.root, ignore_errors=True)
