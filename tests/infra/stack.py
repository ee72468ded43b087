"""The whole local stack: MinIO, the control plane and the local node, started in that order.

Used by the pytest session fixtures and by `make dev-up`, so both run exactly the same thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from tests.infra.controlplane import ControlPlane, scratch_dir
from tests.infra.localnode import NODE_NAME
from tests.infra.minio_server import MinioServer
from tests.infra.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "kubeloop-system"
RECEIVER_PORTS = 2  # host ports relayed into pods for servers a test starts later (webhook, SMTP)


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
    # Free now, relayed into every pod from the start: a test binds its own receivers (a webhook
    # endpoint, an SMTP server) to them on 127.0.0.1 and pods reach them at the same address.
    receiver_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(RECEIVER_PORTS)])
    _own_minio: bool = False

    def start(self) -> Stack:
        """Start what is missing: a MinIO passed in (shared with component tests) is reused."""
        try:
            if self.minio is None:
                self.minio = MinioServer(root=self.root / "minio", keep_root=True).start()
                self._own_minio = True
            self.plane = ControlPlane(root=self.root / "cluster", keep_root=True).start()
            self.node = start_local_node(self.plane, [self.minio.port, *self.receiver_ports])
        except BaseException:
            self.stop()
            raise
        return self

    def install_operator(self) -> None:
        """CRDs from crds/, then the operator from the Helm chart (charts/kubeloop) as the release
        `kubeloop` in kubeloop-system (PodSecurity `restricted`, the namespace rendered by the chart):
        S3 keys in the Secret kubeloop-s3, the endpoint and bucket as chart values, which the chart
        puts in the operator's settings ConfigMap. Re-running it upgrades the release."""
        assert self.plane is not None and self.minio is not None
        plane, kubectl = self.plane, self.plane.kubectl
        chart, ns = REPO / "charts" / "kubeloop", f"--namespace={OPERATOR_NAMESPACE}"

        def helm(*args: str) -> str:
            homes = {
                f"HELM_{d}_HOME": str(plane.root / f"helm-{d.lower()}") for d in ("CACHE", "CONFIG", "DATA")
            }
            argv = [str(plane.bins.require("helm").helm), f"--kubeconfig={plane.kubeconfig}", *args]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                                  env={**os.environ, **homes})  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"helm {' '.join(args)} exited {done.returncode}: {done.stderr}")
            return done.stdout

        kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        namespace = helm("template", "kubeloop", str(chart), ns, "--set=namespace.create=true",
                         "--show-only=templates/namespace.yaml")  # fmt: skip
        kubectl("apply", "-f", "-", input=namespace)
        secret = kubectl(
            "create", "secret", "generic", "kubeloop-s3", ns, "--dry-run=client", "-o=yaml",
            f"--from-literal=accessKey={self.minio.access_key}",
            f"--from-literal=secretKey={self.minio.secret_key}",
        ).stdout  # fmt: skip
        kubectl("apply", "-f", "-", input=secret)
        helm("upgrade", "--install", "kubeloop", str(chart), ns, "--set=crds.enabled=false",
             f"--set=s3.endpoint={self.minio.url}", f"--set=s3.bucket={self.minio.bucket}")  # fmt: skip
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
