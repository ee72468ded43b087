"""The kubelet and kube-proxy of one node, in the node's network namespace.

The kubelet authenticates with a client certificate (system:node:<name>, group system:nodes), so the
Node authorizer and NodeRestriction apply to it; it serves exec, logs and port-forward on the node's
address with a certificate from the stack's CA, and asks the API server (webhook) who may use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.infra.controlplane import write_kubeconfig
from tests.infra.node.network import NodeAddresses, in_netns
from tests.infra.pki import issue
from tests.infra.processes import ManagedProcess

CLUSTER_DOMAIN = "cluster.local"


def cgroup_of(stack_index: int, node: NodeAddresses) -> str:
    return f"/kubeloop/{stack_index}-n{node.index}"


@dataclass(frozen=True)
class NodeSetup:
    """Where a node's files go and what it connects to."""

    root: Path
    node: NodeAddresses
    server: str  # the API server's URL
    ca: Path  # the stack's CA certificate, its key beside it
    logs: Path  # directory of the processes' logs

    def log(self, component: str) -> Path:
        return self.logs / f"{component}-{self.node.name}.log"


def kubelet_config(setup: NodeSetup, endpoint: str, cgroup: str, cluster_dns: str) -> dict[str, object]:
    root, node = setup.root, setup.node
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(setup.ca)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(root / "pki" / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(root / "pki" / "kubelet-serving.key"),
        "containerRuntimeEndpoint": endpoint,
        # cgroup v1 (hybrid) here: Kubernetes 1.35 refuses it unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "cgroupRoot": cgroup,
        "failSwapOn": False,
        "clusterDNS": [cluster_dns],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods never inherit the machine's resolver: only the cluster's DNS answers them.
        "resolvConf": "",
        "podLogsDir": str(root / "pod-logs"),
        "maxPods": 250,
        "serializeImagePulls": False,
        # The disk is shared with everything else on the machine: evict on memory, not on disk
        # headroom, and never garbage-collect the images imported into the node.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusUpdateFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def proxy_config(node: NodeAddresses, kubeconfig: Path, cluster_cidr: str) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "clusterCIDR": cluster_cidr,
        "mode": "iptables",
        # Leave the machine's conntrack table size and timeouts alone (not ours to tune).
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
    }


def client_kubeconfig(root: Path, server: str, ca: Path, name: str, subject: str) -> Path:
    certificate, key = issue(ca.parent, name, subject)
    return write_kubeconfig(root / f"{name}.kubeconfig", server, ca, certificate=certificate, key=key)


def start_kubelet(kubelet: Path, setup: NodeSetup, config: dict[str, object]) -> ManagedProcess:
    """Certificates, kubeconfig and configuration written under the node's root, then the kubelet."""
    root, node = setup.root, setup.node
    pki = root / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    for name in ("ca.crt", "ca.key"):
        (pki / name).write_bytes((setup.ca.parent / name).read_bytes())
    issue(pki, "kubelet-serving", f"/CN={node.name}", server_names=f"IP:{node.ip},DNS:{node.name}")
    subject = f"/O=system:nodes/CN=system:node:{node.name}"
    kubeconfig = client_kubeconfig(root, setup.server, pki / "ca.crt", "kubelet", subject)
    (root / "kubelet.yaml").write_text(yaml.safe_dump(config))
    argv = in_netns(node.netns, str(kubelet),
        f"--config={root / 'kubelet.yaml'}", f"--kubeconfig={kubeconfig}", f"--root-dir={root / 'kubelet'}",
        f"--node-ip={node.ip}", f"--hostname-override={node.name}", "--v=1",
    )  # fmt: skip
    return ManagedProcess(f"kubelet-{node.name}", argv, setup.log("kubelet")).start()


def start_proxy(kube_proxy: Path, setup: NodeSetup, cluster_cidr: str) -> ManagedProcess:
    root, node = setup.root, setup.node
    ca = root / "pki" / "ca.crt"  # the kubelet's start put it there
    kubeconfig = client_kubeconfig(root, setup.server, ca, "kube-proxy", "/CN=system:kube-proxy")
    (root / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy_config(node, kubeconfig, cluster_cidr)))
    argv = in_netns(node.netns, str(kube_proxy), f"--config={root / 'kube-proxy.yaml'}", "--v=1")
    return ManagedProcess(f"kube-proxy-{node.name}", argv, setup.log("kube-proxy")).start()
