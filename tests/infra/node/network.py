"""The stack's own network: a host bridge, and a network namespace per node wired to it.

Nothing binds the machine's external address. Each stack claims an index i (a claim file per index,
so parallel stacks and a crashed one's leftovers are told apart) and owns:

- the bridge `klbr<i>`, 10.(200+i).0.1/24: the host end. The API server, MinIO and the receivers a
  test starts bind this address, so the host and every pod reach them at the same place;
- per node n, a namespace `kl<i>-n<n>` whose eth0 is 10.(200+i).0.(10+n), a veth on the bridge. The
  node's containerd, kubelet and kube-proxy run inside it, as kind runs nodes in containers: their
  ports and iptables rules are the node's own, so two stacks never meet;
- the pod range 10.(200+i).64.0/18, a /24 per node, routed from the host (and from the other nodes)
  through the node's eth0. Pods reach nothing else: the host does not forward.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass, field

from tests.infra.node import claims


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def in_netns(netns: str, *argv: str) -> list[str]:
    """argv run inside `netns` (network only: the mount namespace stays the host's, so mounts made by
    the kubelet are seen by containerd and runc)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


def sysctl_in(netns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    subprocess.run(in_netns(netns, "sh", "-c", f"echo {value} > {path}"), check=True, capture_output=True)


@dataclass(frozen=True)
class NodeAddresses:
    index: int  # the node's number within the stack
    name: str
    netns: str
    ip: str
    pod_cidr: str
    pod_gateway: str


@dataclass
class StackNetwork:
    """`StackNetwork().create()`, then `add_node(n)` per node; `destroy()` removes all of it."""

    index: int = -1
    nodes: list[NodeAddresses] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"10.{200 + self.index}"

    @property
    def bridge(self) -> str:
        return f"klbr{self.index}"

    @property
    def host_ip(self) -> str:
        """Where host services listen for the pods (and the tests) to reach them."""
        return f"{self.base}.0.1"

    @property
    def cluster_cidr(self) -> str:
        return f"{self.base}.64.0/18"

    def create(self) -> StackNetwork:
        self.index = claims.claim()
        ip("link", "add", self.bridge, "type", "bridge", "forward_delay", "0")
        ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def node(self, n: int, name: str) -> NodeAddresses:
        subnet = ipaddress.ip_network(f"{self.base}.{64 + n}.0/24")
        return NodeAddresses(
            index=n, name=name, netns=f"kl{self.index}-n{n}", ip=f"{self.base}.0.{10 + n}",
            pod_cidr=str(subnet), pod_gateway=str(subnet.network_address + 1),
        )  # fmt: skip

    def add_node(self, n: int, name: str) -> NodeAddresses:
        node = self.node(n, name)
        veth = f"kl{self.index}n{n}"
        ip("netns", "add", node.netns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        ip("link", "set", veth, "master", self.bridge, "up")
        ip("-n", node.netns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
        ip("-n", node.netns, "link", "set", "eth0", "up")
        ip("-n", node.netns, "link", "set", "lo", "up")
        ip("-n", node.netns, "route", "add", "default", "via", self.host_ip)
        ip("route", "add", node.pod_cidr, "via", node.ip)
        for other in self.nodes:  # pod to pod across nodes, both ways
            ip("-n", node.netns, "route", "add", other.pod_cidr, "via", other.ip)
            ip("-n", other.netns, "route", "add", node.pod_cidr, "via", node.ip)
        sysctl_in(node.netns, "net.ipv4.ip_forward", "1")
        self.nodes.append(node)
        return node

    def destroy(self) -> None:
        """Everything of the network; the claim itself is released by its holder."""
        if self.index >= 0:
            remove_network(self.index)


def remove_network(index: int) -> None:
    """Namespaces, routes and the bridge of stack `index` (deleting a namespace takes its veth)."""
    for name in ip("netns", "list").stdout.split():
        if name.startswith(f"kl{index}-n"):
            ip("netns", "del", name, check=False)
    base = f"10.{200 + index}."
    for route in ip("route", "show").stdout.splitlines():
        if route.startswith(base) and " via " in route:
            ip("route", "del", route.split()[0], check=False)
    ip("link", "del", f"klbr{index}", check=False)
