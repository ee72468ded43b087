"""A tiny real HTTP server standing in for a misbehaving model server: `python fake_backend.py PORT MODE`.

MODE `fail` answers every request 500; `slow:<seconds>` answers a V2-shaped prediction after
sleeping that long. Every request is counted; GET /count tells how many predictions arrived and how
many carried X-Kubeloop-Shadow.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {"requests": 0, "shadow": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "fail"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/count":
            with LOCK:
                self._send(200, dict(COUNTS))
        else:
            self._send(200, {"live": True})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with LOCK:
            COUNTS["requests"] += 1
            COUNTS["shadow"] += self.headers.get("x-kubeloop-shadow") == "true"
        if self.mode == "fail":
            self._send(500, {"error": "this candidate always fails"})
            return
        time.sleep(float(self.mode.split(":", 1)[1]))
        outputs = [{"name": "label", "datatype": "BYTES", "shape": [1], "data": ["no"]}]
        self._send(200, {"model_name": "churn", "model_version": "2", "outputs": outputs})


def main() -> None:
    port, Handler.mode = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
