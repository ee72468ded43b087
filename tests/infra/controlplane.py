"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager.

Everything lives in one temporary directory (on /dev/shm when there is one, for etcd's sake),
binds 127.0.0.1 on free ports, and `stop()` ends exactly the processes `start()` began.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes import client, config

from tests.infra.pki import Pki, create_pki, issue
from tests.infra.processes import ManagedProcess, free_port, http_ok, tail, wait_until
from tests.infra.testbin import Binaries, binaries

# The controllers a kubelet-less cluster needs for Jobs, Deployments, Services, GC and namespaces.
CONTROLLERS = (
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "pod-garbage-collector-controller",
    "disruption-controller",
    "resourcequota-controller",
    "daemonset-controller",
    "statefulset-controller",
    # Taints a node that stops heartbeating and evicts its pods, as on a real cluster.
    "node-lifecycle-controller",
)
SERVICE_CIDR = "10.0.0.0/24"


def scratch_dir(prefix: str) -> Path:
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=shm if shm.is_dir() else None))


@dataclass
class ControlPlane:
    """Start with `ControlPlane(host_ip=...).start()`; `kubeconfig` is then an admin kubeconfig.

    The API server binds `host_ip`, an address on the stack's own bridge, so that the host and the
    pods (through the `kubernetes` Service) reach it at the same place."""

    host_ip: str
    root: Path = field(default_factory=lambda: scratch_dir("kubeloop-cp-"))
    bins: Binaries = field(default_factory=binaries)
    keep_root: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)
    api_port: int = 0
    pki: Pki | None = None

    @property
    def server(self) -> str:
        return f"https://{self.host_ip}:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start(self) -> ControlPlane:
        self.bins.require("etcd", "kube_apiserver", "kube_controller_manager", "kube_scheduler", "kubectl")
        try:
            self.pki = create_pki(self.root / "pki", f"IP:{self.host_ip}")
            etcd_url = self._start_etcd()
            self._start_apiserver(etcd_url)
            write_kubeconfig(self.kubeconfig, self.server, self.pki.ca_cert, token=self.pki.admin_token)
            self._start_controller_manager()
            self._start_scheduler()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if not self.keep_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl_argv(self) -> list[str]:
        return [str(self.bins.kubectl), f"--kubeconfig={self.kubeconfig}"]

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The kubectl built with the server, on this control plane's admin kubeconfig."""
        argv = [*self.kubectl_argv(), *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, input=input, timeout=180)

    def log_tails(self, lines: int = 30) -> dict[str, str]:
        return {p.name: tail(p.log, lines) for p in self.processes}

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.logs / f"{name}.log").start()
        self.processes.append(process)
        return process

    def _start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        etcd = self._spawn(
            "etcd",
            [
                str(self.bins.etcd),
                "--name=kubeloop",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=kubeloop={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_until(lambda: http_ok(f"{url}/readyz", etcd), 30, "etcd /readyz")
        return url

    def _start_apiserver(self, etcd_url: str) -> None:
        assert self.pki is not None
        self.api_port = free_port(self.host_ip)
        pki = self.pki
        apiserver = self._spawn(
            "kube-apiserver",
            [
                str(self.bins.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.host_ip}",
                f"--advertise-address={self.host_ip}",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--token-auth-file={pki.token_file}",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Kubelets may touch only their own Node and the pods bound to it.
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                "--profiling=false",
                # Reach kubelets (exec, logs, port-forward) at their InternalIP, never through a DNS
                # lookup, with a client certificate, and check theirs against the stack's CA.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-client-certificate={pki.kubelet_client_cert}",
                f"--kubelet-client-key={pki.kubelet_client_key}",
                f"--kubelet-certificate-authority={pki.ca_cert}",
                f"--cert-dir={self.root / 'apiserver-certs'}",
            ],
        )
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        wait_until(
            lambda: http_ok(f"{self.server}/readyz", apiserver, context, pki.admin_token),
            90,
            "kube-apiserver /readyz",
        )

    def _start_controller_manager(self) -> None:
        assert self.pki is not None
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bins.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-job-syncs=10",
            ],
        )
        wait_until(
            self._default_service_account_exists, 60, "kube-controller-manager (default ServiceAccount)"
        )

    def _start_scheduler(self) -> None:
        assert self.pki is not None
        certificate, key = issue(self.pki.ca_cert.parent, "scheduler", "/CN=system:kube-scheduler")
        kubeconfig = self.root / "scheduler.kubeconfig"
        write_kubeconfig(kubeconfig, self.server, self.pki.ca_cert, certificate=certificate, key=key)
        self._spawn(
            "kube-scheduler",
            [
                str(self.bins.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )

    def _default_service_account_exists(self) -> bool:
        assert self.pki is not None
        for process in self.processes:
            process.check_alive()
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        return http_ok(url, None, context, self.pki.admin_token)


def write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    *,
    token: str | None = None,
    certificate: Path | None = None,
    key: Path | None = None,
) -> Path:
    """A kubeconfig for one user: a bearer token, or a client certificate and key."""
    user = {"token": token} if token else {"client-certificate": str(certificate), "client-key": str(key)}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubeloop", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "kubeloop-user", "user": user}],
        "contexts": [
            {
                "name": "kubeloop",
                "context": {"cluster": "kubeloop", "user": "kubeloop-user", "namespace": "default"},
            }
        ],
        "current-context": "kubeloop",
    }
    path.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
    path.chmod(0o600)
    return path
