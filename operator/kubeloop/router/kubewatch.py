"""Kubernetes mode: follow the routing ConfigMap and each backend Service's EndpointSlices.

List, then watch from the list's resourceVersion; a watch that ends is resumed from the last
version seen, `410 Gone` lists again, and any other failure backs off (0.5 s doubling to 30 s) and
lists again. A bad table is reported (/router/config `problem`, the log) and the previous one stays.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from kubeloop.contracts.router import RouterSettings
from kubeloop.contracts.routing import ROUTING_KEY, RoutingTable
from kubeloop.router.app import Router
from kubeloop.router.kubeapi import KubeApi, KubeApiError

log = logging.getLogger("kubeloop.router")
WATCH_SECONDS = 300  # the API server ends each watch after this; it is then resumed
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0
SERVICE_LABEL = "kubernetes.io/service-name"

Object = dict[str, Any]


class Gone(Exception):
    """The resourceVersion is too old to watch from: list again."""


async def follow(
    api: KubeApi, path: str, params: dict[str, str], *, relist: Callable[[list[Object]], None],
    changed: Callable[[str, Object], None], what: str,
) -> None:  # fmt: skip
    """Keep `relist` and `changed` fed with the objects at `path` matching `params`, forever."""
    backoff = FIRST_BACKOFF
    while True:
        try:
            listing = await api.get(path, params)
            relist(listing.get("items") or [])
            version = listing["metadata"]["resourceVersion"]
            while True:
                started = time.monotonic()
                watch = {**params, "watch": "true", "resourceVersion": version, "allowWatchBookmarks": "true",
                         "timeoutSeconds": str(WATCH_SECONDS)}  # fmt: skip
                async for event in api.watch(path, watch, idle_seconds=WATCH_SECONDS + 30):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone(obj.get("message", ""))
                        raise KubeApiError(int(obj.get("code") or 500), str(obj.get("message")))
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        changed(kind, obj)
                    backoff = FIRST_BACKOFF
                if time.monotonic() - started < 1:  # a watch that ends at once: do not spin
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
        except Gone:
            log.info("%s: resourceVersion expired, listing again", what)
        except asyncio.CancelledError:
            raise
        except (OSError, TimeoutError, KubeApiError, ValueError, KeyError) as error:
            hint = ""
            if isinstance(error, KubeApiError) and error.status in (401, 403):
                hint = " (the router's account needs get/list/watch on configmaps and endpointslices)"
            log.warning("%s: %s%s; retrying in %.1fs", what, error or type(error).__name__, hint, backoff)
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
            backoff = min(backoff * 2, MAX_BACKOFF)


def slice_port(ports: list[Object] | None, service_port: int) -> int:
    """The pods' port in a slice: the one numbered like the backend's port, else the one named
    `http`, else the only one; a slice without ports means every port, so the backend's."""
    if not ports:
        return service_port
    numbers = [p.get("port") for p in ports]
    if service_port in numbers:
        return service_port
    named = [p.get("port") for p in ports if p.get("name") == "http" and p.get("port")]
    if named:
        return int(named[0])  # type: ignore[arg-type]
    if len(ports) == 1 and ports[0].get("port"):
        return int(ports[0]["port"])
    return service_port


def ready_addresses(slices: Iterable[Object], service_port: int) -> list[tuple[str, int]]:
    """Addresses of the endpoints whose `ready` condition is true or absent, in a stable order."""
    found: dict[tuple[str, int], None] = {}
    for one in sorted(slices, key=lambda s: str((s.get("metadata") or {}).get("name"))):
        port = slice_port(one.get("ports"), service_port)
        for endpoint in one.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                found[(address, port)] = None
    return list(found)


class KubeSource:
    def __init__(self, settings: RouterSettings, router: Router, api: KubeApi) -> None:
        self.router, self.api = router, api
        self.namespace, self.name = settings.namespace, settings.routing_configmap
        router.source = f"configmap:{self.namespace}/{self.name}"
        self.slices: dict[str, dict[str, Object]] = {}
        self.watchers: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        try:
            await follow(
                self.api, f"/api/v1/namespaces/{self.namespace}/configmaps",
                {"fieldSelector": f"metadata.name={self.name}"}, relist=self._relisted, changed=self._changed,
                what=f"configmap {self.namespace}/{self.name}",
            )  # fmt: skip
        finally:
            for task in self.watchers.values():
                task.cancel()

    # --- the ConfigMap
    def _relisted(self, items: list[Object]) -> None:
        if items:
            self._apply(items[0])
        else:
            log.warning("configmap %s/%s does not exist (yet)", self.namespace, self.name)

    def _changed(self, kind: str, obj: Object) -> None:
        if kind == "DELETED":
            log.warning("configmap %s/%s was deleted; keeping its last table", self.namespace, self.name)
        else:
            self._apply(obj)

    def _apply(self, configmap: Object) -> None:
        text = (configmap.get("data") or {}).get(ROUTING_KEY)
        try:
            if text is None:
                raise ValueError(f"no key {ROUTING_KEY}")
            table = RoutingTable.model_validate_json(text)
        except (ValidationError, ValueError) as error:
            self.router.problem = f"configmap {self.namespace}/{self.name}: {error}"
            log.error("keeping the previous routing table: %s", self.router.problem)
            return
        self.router.problem = None
        self.router.set_table(table)
        services = self.router.services()
        for service in set(self.watchers) - set(services):
            self.watchers.pop(service).cancel()
            self.slices.pop(service, None)
        for service in services:
            if service not in self.watchers:
                self.slices[service] = {}
                self.watchers[service] = asyncio.get_running_loop().create_task(self._follow_service(service))
            self._publish(service)  # the port may have changed

    # --- the backends' EndpointSlices
    async def _follow_service(self, service: str) -> None:
        def relisted(items: list[Object]) -> None:
            self.slices[service] = {str(item["metadata"]["name"]): item for item in items}
            self._publish(service)

        def changed(kind: str, obj: Object) -> None:
            name = str(obj["metadata"]["name"])
            if kind == "DELETED":
                self.slices[service].pop(name, None)
            else:
                self.slices[service][name] = obj
            self._publish(service)

        await follow(
            self.api, f"/apis/discovery.k8s.io/v1/namespaces/{self.namespace}/endpointslices",
            {"labelSelector": f"{SERVICE_LABEL}={service}"}, relist=relisted, changed=changed,
            what=f"endpointslices of {service}",
        )  # fmt: skip

    def _publish(self, service: str) -> None:
        port = self.router.services().get(service)
        if port is not None:
            self.router.set_addresses(service, ready_addresses(self.slices.get(service, {}).values(), port))
