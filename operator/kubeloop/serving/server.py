"""Running the app under uvicorn: one process, graceful SIGTERM, JSON logs."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

import uvicorn

from kubeloop.contracts.serving import ServingSettings
from kubeloop.serving.app import create_app
from kubeloop.serving.fastpath import FastInference
from kubeloop.serving.runtime import Runtime
from kubeloop.store.client import Store

log = logging.getLogger("kubeloop.serving")
GRACEFUL_SECONDS = 25  # in-flight requests get this long after the listener closes (Kubernetes gives 30)


class DrainingServer(uvicorn.Server):
    """On SIGTERM turn unready first and keep serving for `delay` seconds, so endpoints move away
    before the listener closes; then uvicorn's own graceful stop finishes in-flight requests and the
    app's shutdown flushes the logs."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime, delay: float) -> None:
        super().__init__(config)
        self.runtime, self.delay = runtime, delay
        runtime.connections = lambda: len(self.server_state.connections)
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.delay > 0 and not self._draining:
            self._draining = True
            self.runtime.drain()
            log.info("SIGTERM: unready, stopping in %.1fs", self.delay)
            threading.Timer(self.delay, super().handle_exit, (sig, frame)).start()
            return
        log.info("stopping: finishing in-flight requests, then flushing the logs")
        super().handle_exit(sig, frame)


def serve(settings: ServingSettings, store: Store) -> None:
    # A background thread running Python (the log writer) holds the GIL for up to the switch
    # interval before the event loop gets it back: 5 ms by default, far above a request's cost.
    sys.setswitchinterval(0.0005)
    app = create_app(settings, store)
    config = uvicorn.Config(
        FastInference(app, app.state.runtime),
        host=settings.bind_host,
        port=settings.port,
        log_config=None,  # jsonlog.configure() owns logging
        access_log=settings.access_log,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
        lifespan="on",
    )
    DrainingServer(config, app.state.runtime, settings.shutdown_delay_seconds).run()
