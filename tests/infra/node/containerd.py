"""containerd (Debian's) for one node: its own root, state, socket and CNI configuration.

The settings that matter on these machines are in research/real-node.md: runc (crun refuses cgroup v1
hybrid), the cgroupfs driver, and `restrict_oom_score_adj` (without CAP_SYS_RESOURCE the kubelet's
-998 for sandboxes is refused and every sandbox fails with "can't get final child's PID from pipe").
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.infra.node.network import NodeAddresses, in_netns
from tests.infra.processes import ManagedProcess, wait_until

CNI_BIN = "/usr/lib/cni"
RUNC = "/usr/sbin/runc"
UNUSED_PLUGINS = (
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
)


def config(root: Path, pause_image: str) -> str:
    disabled = ", ".join(f'"{p}"' for p in UNUSED_PLUGINS)
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = [{disabled}]

[grpc]
  address = "{root / "containerd.sock"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  restrict_oom_score_adj = true
  # Pod network namespaces live under the node's directory, so removing the node removes them.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{root / "cni"}"
"""


def cni_config(root: Path, node: NodeAddresses) -> dict[str, object]:
    """A bridge `cni0` in the node's namespace, the node's /24 by host-local (its state in the node's
    directory), no masquerade: the host routes the pod range back through the node."""
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": node.pod_cidr, "gateway": node.pod_gateway}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(root / "ipam"),
    }
    return {
        "cniVersion": "1.0.0",
        "name": "kubeloop",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": ipam},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }  # fmt: skip


class Containerd:
    def __init__(self, root: Path, node: NodeAddresses, pause_image: str, logs: Path) -> None:
        self.root, self.node, self.pause_image, self.logs = root, node, pause_image, logs
        self.process: ManagedProcess | None = None

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> Containerd:
        (self.root / "cni").mkdir(parents=True, exist_ok=True)
        (self.root / "config.toml").write_text(config(self.root, self.pause_image))
        (self.root / "cni" / "10-kubeloop.conflist").write_text(json.dumps(cni_config(self.root, self.node)))
        argv = in_netns(self.node.netns, "containerd", f"--config={self.root / 'config.toml'}")
        self.process = ManagedProcess(f"containerd-{self.node.name}", argv, self.logs).start()
        wait_until(self._serving, 60, f"containerd of {self.node.name}")
        return self

    def _serving(self) -> bool:
        assert self.process is not None
        self.process.check_alive()
        return self.ctr("version", check=False).returncode == 0

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
        if check and done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {done.stderr.strip()}")
        return done

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10)
