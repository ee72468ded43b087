"""Pod networking on one machine: a network namespace per pod, veths on a bridge the agent owns.

The API server rejects loopback addresses in EndpointSlices, so pods cannot live on 127.x. Each
agent claims a bridge `klbr<i>` with subnet 10.(200+i).0.0/16 (gateway .0.1); each pod gets a
namespace, a veth and the next address. Host services that listen on 127.0.0.1 are relayed into
every pod namespace at the same 127.0.0.1:port (see relay.py), so a pod reaches the API server and
MinIO at the addresses the operator uses.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import threading
from pathlib import Path

log = logging.getLogger("localnode.network")
STATE_DIR = Path("/run/kubeloop-localnode")
MAX_AGENTS = 40


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class PodNetwork:
    """The agent's bridge, subnet and the namespaces of its pods."""

    def __init__(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.index = self._claim()
        self.bridge = f"klbr{self.index}"
        self.subnet = ipaddress.ip_network(f"10.{200 + self.index}.0.0/16")
        self.gateway = str(self.subnet.network_address + 1)
        self._next = 2
        self._free: list[int] = []
        self._lock = threading.Lock()
        ip("link", "add", self.bridge, "type", "bridge", "forward_delay", "0")
        ip("addr", "add", f"{self.gateway}/16", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def _claim(self) -> int:
        """First index whose claim file is absent or left by a dead agent (then clean its leftovers)."""
        for index in range(MAX_AGENTS):
            claim = STATE_DIR / f"klbr{index}.pid"
            try:
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = int(claim.read_text() or 0)
                if owner and _pid_alive(owner):
                    continue
                self._clean_leftovers(index)
                claim.unlink(missing_ok=True)
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return index
        raise RuntimeError(f"no free pod network: {MAX_AGENTS} local node agents are running")

    @staticmethod
    def _clean_leftovers(index: int) -> None:
        for name in ip("netns", "list").stdout.split():
            if name.startswith(f"kl{index}-"):
                ip("netns", "del", name, check=False)
        ip("link", "del", f"klbr{index}", check=False)

    def attach(self) -> tuple[str, str]:
        """A new pod namespace wired to the bridge; returns (pod IP, namespace path)."""
        with self._lock:
            host = self._free.pop(0) if self._free else self._next
            self._next = max(self._next, host + 1)
        address = str(self.subnet.network_address + host)
        netns, veth = f"kl{self.index}-{host}", f"klv{self.index}-{host}"
        ip("netns", "del", netns, check=False)
        ip("netns", "add", netns)
        ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("link", "set", veth, "master", self.bridge, "up")
        ip("-n", netns, "addr", "add", f"{address}/16", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "route", "add", "default", "via", self.gateway)
        return address, f"/run/netns/{netns}"

    def detach(self, address: str) -> None:
        host = int(ipaddress.ip_address(address)) - int(self.subnet.network_address)
        ip("netns", "del", f"kl{self.index}-{host}", check=False)  # takes the veth pair with it
        with self._lock:
            self._free.append(host)

    def close(self) -> None:
        self._clean_leftovers(self.index)
        (STATE_DIR / f"klbr{self.index}.pid").unlink(missing_ok=True)
