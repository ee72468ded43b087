"""The kubelet's log endpoint, so `kubectl logs` works: the API server proxies
GET /containerLogs/<ns>/<pod>/<container>?tailLines=&follow= to the node's daemon port over HTTPS.

Loopback only; like a kubelet started without authentication, it trusts whoever can reach it.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FOLLOW_POLL = 0.2


def self_signed(directory: Path) -> ssl.SSLContext:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "365", "-subj", "/CN=kubeloop-local", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class LogServer:
    def __init__(self, pods_root: Path, stopping: threading.Event) -> None:
        self.pods_root, self.stopping = pods_root, stopping
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        context = self_signed(pods_root.parent / "kubelet-pki")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, name="logs", daemon=True).start()

    def log_file(self, namespace: str, pod: str, container: str) -> Path | None:
        candidates = sorted(self.pods_root.glob(f"{namespace}_{pod}_*/logs/{container}.log"),
                            key=lambda p: p.stat().st_mtime)  # fmt: skip
        return candidates[-1] if candidates else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        logs = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet: the agent has its own log
                return

            def do_GET(self) -> None:
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404, "only /containerLogs/<namespace>/<pod>/<container> is served")
                    return
                path = logs.log_file(*parts[1:])
                if path is None:
                    self.send_error(404, f"no log for container {parts[3]} of pod {parts[1]}/{parts[2]}")
                    return
                query = parse_qs(url.query)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                with path.open("rb") as handle:
                    lines = handle.readlines()
                    tail = int(query.get("tailLines", ["-1"])[0])
                    self.wfile.write(b"".join(lines[-tail:] if tail >= 0 else lines))
                    self.wfile.flush()
                    while query.get("follow") == ["true"] and not logs.stopping.is_set():
                        chunk = handle.read()
                        if chunk:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                        else:
                            time.sleep(FOLLOW_POLL)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
