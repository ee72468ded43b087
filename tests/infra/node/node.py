"""One real node: containerd, kubelet and kube-proxy in the node's network namespace.

`Node(...).start()` leaves it registered and Ready with the given images imported; `stop()` removes
every process, container, mount, cgroup and file of it (teardown.py), and so does a later stack when
this one's holder died (claims.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client

from images.build import BuiltImage
from images.containerd import import_images
from tests.infra.controlplane import ControlPlane
from tests.infra.node import claims
from tests.infra.node.containerd import Containerd
from tests.infra.node.kubelet import NodeSetup, cgroup_of, kubelet_config, start_kubelet, start_proxy
from tests.infra.node.network import NodeAddresses, StackNetwork
from tests.infra.node.teardown import CGROUPS, remove_node
from tests.infra.processes import ManagedProcess, wait_until

CLUSTER_DNS = "10.0.0.10"


def node_name(number: int) -> str:
    return f"kubeloop-node-{number}"


def make_cgroup(cgroup: str) -> None:
    """The node's cgroup root in every v1 hierarchy; cpuset children start empty, so copy the
    parent's cpus and memory nodes at each level."""
    for hierarchy in CGROUPS.iterdir():
        if hierarchy.name == "unified" or not hierarchy.is_dir():
            continue
        path = hierarchy
        for part in cgroup.strip("/").split("/"):
            parent, path = path, path / part
            path.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for key in ("cpuset.cpus", "cpuset.mems"):
                    if not (path / key).read_text().strip():
                        (path / key).write_text((parent / key).read_text())


@dataclass
class Node:
    network: StackNetwork
    number: int
    root: Path
    plane: ControlPlane
    pause_image: str
    images: list[BuiltImage]
    addresses: NodeAddresses | None = None
    containerd: Containerd | None = None
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def name(self) -> str:
        return node_name(self.number)

    @property
    def cgroup(self) -> str:
        return cgroup_of(self.network.index, self.network.node(self.number, self.name))

    def start(self) -> Node:
        claims.add_node(self.network.index, self.root, self.cgroup)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        plane, bins = self.plane, self.plane.bins
        assert plane.pki is not None
        self.addresses = node = self.network.add_node(self.number, self.name)
        setup = NodeSetup(self.root, node, plane.server, plane.pki.ca_cert, plane.logs)
        make_cgroup(self.cgroup)
        self.containerd = Containerd(
            self.root / "containerd", node, self.pause_image, setup.log("containerd")
        )
        self.processes.append(self.containerd.start().process)  # type: ignore[arg-type]
        import_images(self.images, str(self.containerd.socket))
        config = kubelet_config(setup, self.containerd.endpoint, self.cgroup, CLUSTER_DNS)
        self.processes.append(start_kubelet(bins.kubelet, setup, config))
        self.processes.append(start_proxy(bins.kube_proxy, setup, self.network.cluster_cidr))
        core = client.CoreV1Api(plane.api_client())

        def ready() -> bool:
            for process in self.processes:
                process.check_alive()
            conditions = core.read_node(self.name).status.conditions or []
            return any(c.type == "Ready" and c.status == "True" for c in conditions)

        wait_until(ready, 120, f"node {self.name} to register Ready")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(grace=10)
        self.processes.clear()
        remove_node(self.root, self.cgroup)
