"""Session fixtures: the stack's network, MinIO, the real control plane and node, started once per run."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.infra.controlplane import ControlPlane
from tests.infra.minio_server import MinioServer
from tests.infra.node import claims
from tests.infra.node.network import StackNetwork
from tests.infra.processes import tail, wait_until
from tests.infra.stack import Stack

# Logs worth showing when a test fails: name -> path. Filled as components start.
LOG_SOURCES: dict[str, Path] = {}


@dataclass
class Cluster:
    plane: ControlPlane
    api: client.ApiClient

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl(*args, check=check, input=input)


@pytest.fixture(scope="session")
def network() -> Iterator[StackNetwork]:
    """The stack's own bridge: host services bind its address, where the host and pods reach them."""
    created = StackNetwork().create()
    yield created
    created.destroy()
    claims.release(created.index)


@pytest.fixture(scope="session")
def minio(network: StackNetwork) -> Iterator[MinioServer]:
    """A real MinIO server, once per test session (component tests need nothing more)."""
    server = MinioServer(host=network.host_ip).start()
    assert server.process is not None
    LOG_SOURCES["minio"] = server.process.log
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(network: StackNetwork, minio: MinioServer) -> Iterator[Stack]:
    """The control plane and the real node (with the session's network and MinIO), once per session."""
    running = Stack(network=network, minio=minio).start()
    for process in running.processes:
        LOG_SOURCES[process.name] = process.log
    yield running
    running.stop()


@pytest.fixture(scope="session")
def cluster(stack: Stack) -> Cluster:
    assert stack.plane is not None
    return Cluster(stack.plane, config.new_client_from_config(config_file=str(stack.plane.kubeconfig)))


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, with its default ServiceAccount in place."""
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"t-{readable}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": name}})
    wait_until(
        lambda: core.read_namespaced_service_account("default", name) is not None,
        30,
        f"the default ServiceAccount in {name}",
    )
    yield name
    core.delete_namespace(name)


def log_report() -> str:
    return "\n".join(f"--- {name} ({path}) ---\n{tail(path, 30)}" for name, path in LOG_SOURCES.items())
