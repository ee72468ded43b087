"""Running the router: one process on uvloop, its routing source, a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time

import uvloop

from kubeloop.contracts.router import RouterSettings
from kubeloop.router.app import Router
from kubeloop.router.filesource import FileSource
from kubeloop.router.httpserver import Connections, HttpProtocol
from kubeloop.router.kubeapi import KubeApi
from kubeloop.router.kubewatch import KubeSource

log = logging.getLogger("kubeloop.router")
GRACEFUL_SECONDS = 25.0  # in-flight requests get this long after the listener closes (Kubernetes gives 30)


def source_of(settings: RouterSettings, router: Router) -> FileSource | KubeSource:
    """The routing source; a standalone file is read now, so a bad one stops the start (ValueError)."""
    if settings.routing_file:
        source = FileSource(settings.routing_file, router)
        source.load()
        return source
    api = KubeApi(settings.kube_api, settings.kube_token_file, settings.kube_ca_file)
    return KubeSource(settings, router, api)


async def serve(settings: RouterSettings, router: Router, source: FileSource | KubeSource) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    connections = Connections()
    listener = await loop.create_server(
        lambda: HttpProtocol(router.handle, settings.max_body_bytes, connections),
        settings.bind_host, settings.port, reuse_address=True, backlog=2048,
    )  # fmt: skip
    router.copier.start()
    following = loop.create_task(source.run())
    gc.collect()
    gc.freeze()  # the start-up objects stay out of every later collection (shorter pauses)
    log.info("router listening on %s:%d", settings.bind_host, settings.port, extra={"source": router.source})
    await stop.wait()
    router.draining = True
    if settings.shutdown_delay_seconds:
        log.info("SIGTERM: unready, stopping in %.1fs", settings.shutdown_delay_seconds)
        await asyncio.sleep(settings.shutdown_delay_seconds)
    log.info("stopping: finishing in-flight requests")
    listener.close()
    deadline = time.monotonic() + GRACEFUL_SECONDS
    while connections.busy() and time.monotonic() < deadline:
        connections.close_idle()
        await asyncio.sleep(0.05)
    connections.close_idle()
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await router.copier.stop()
    for pods in router.pods.values():
        pods.close()


def run(settings: RouterSettings, router: Router, source: FileSource | KubeSource) -> None:
    uvloop.run(serve(settings, router, source))
