"""python -m tests.infra.localnode --kubeconfig FILE --root DIR [--host-port N ...]"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tests.infra.localnode.agent import LocalNode
from tests.infra.localnode.images import ImageMap

log = logging.getLogger("localnode")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run the kubeloop local node agent (kubelet + scheduler stand-in)."
    )
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path, help="directory for pod files and container logs")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter that runs our images and python:*"
    )
    parser.add_argument(
        "--host-port",
        type=int,
        action="append",
        default=[],
        help="a 127.0.0.1 port (e.g. MinIO's) to make reachable inside pods; repeatable",
    )
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    node = LocalNode(options.kubeconfig, options.root, ImageMap(python=options.python), options.host_port)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def run() -> None:
        try:
            node.run()
        except Exception:
            log.exception("the agent failed")
        finally:
            stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=run, name="watch", daemon=True).start()
    stop.wait()
    node.shutdown()
    log.info("stopped")


if __name__ == "__main__":
    main()
