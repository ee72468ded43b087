"""A throwaway PKI for one control plane: CA, API server serving cert, service-account keys.

openssl (Debian's) does the work; the CA carries keyUsage and the leaf SKI/AKI so strict X.509
verifiers (Python >= 3.13 defaults) accept the chain too.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVER_NAMES = (
    "IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
    "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
)
LEAF = "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path
    sa_key: Path
    sa_pub: Path
    token_file: Path
    admin_token: str


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def create_pki(directory: Path, extra_names: str) -> Pki:
    """`extra_names`: more subjectAltNames of the API server, e.g. `IP:10.200.0.1`."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=kubeloop-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )
    issue(directory, "apiserver", "/CN=kube-apiserver", server_names=f"{SERVER_NAMES},{extra_names}")
    # How the API server proves itself to kubelets (exec, logs, port-forward): a user that kubelets'
    # webhook authorization asks the API server about, and RBAC lets through.
    issue(directory, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    token = secrets.token_hex(24)
    (directory / "tokens.csv").write_text(f'{token},kubeloop-admin,kubeloop-admin-uid,"system:masters"\n')
    return Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
        token_file=directory / "tokens.csv",
        admin_token=token,
    )


def issue(directory: Path, name: str, subject: str, *, server_names: str = "") -> tuple[Path, Path]:
    """`<name>.crt` and `<name>.key` signed by the CA in `directory`: a server certificate for
    `server_names` (subjectAltNames) when given, else a client certificate. `subject` carries the
    Kubernetes identity of a client: CN is the user, O the groups (e.g. /O=system:nodes/CN=system:node:x)."""
    usage = "serverAuth" if server_names else "clientAuth"
    ext = f"{LEAF}keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\n"
    if server_names:
        ext += f"subjectAltName={server_names}\n"
    (directory / f"{name}.ext").write_text(ext)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, cwd=directory)  # fmt: skip
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory)  # fmt: skip
    return directory / f"{name}.crt", directory / f"{name}.key"
