"""The reconcile every kind shares: the core plan (pure), then the kind's own progress step, then
one status write and the Events of the transitions.

Kopf runs timers beside the regular handlers, so one object's reconciles are serialized by a lock,
and the status write carries the resourceVersion it was computed from: a reconcile working from a
stale copy gets 409 and is simply retried.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.rest import ApiException
from pydantic import BaseModel

from kubeloop import API_GROUP, API_VERSION
from kubeloop.api.v1alpha1 import KindInfo
from kubeloop.kube.events import post_event
from kubeloop.kube.status import patch_status
from kubeloop.operator.metrics import reconcile_observed
from kubeloop.planning.conditions import find
from kubeloop.planning.core import INVALID_SPEC, Event, KindPolicy, plan_core, status_changes

Logger = logging.Logger | logging.LoggerAdapter[Any]
Obj = dict[str, Any]
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@dataclass
class Progress:
    """A kind's step after the core one: the status it wants and the Events of its transitions."""

    status: Obj
    events: list[Event] = field(default_factory=list)
    # Run once the status is written (e.g. counters of finished work): a reconcile retried after a
    # conflict recomputes them instead of counting twice.
    after_write: list[Callable[[], None]] = field(default_factory=list)


# (resource with the core status applied, its parsed spec) -> progress; may create children.
ProgressFn = Callable[[Obj, BaseModel], Progress]


def reconcile(info: KindInfo, policy: KindPolicy, progress: ProgressFn | None, body: kopf.Body,
              logger: Logger) -> None:  # fmt: skip
    resource: Obj = copy.deepcopy(dict(body))
    meta = resource["metadata"]
    with _locks[meta["uid"]], reconcile_observed(info.kind):
        core = plan_core(policy, resource, datetime.now(UTC))
        status, events = core.status, list(core.events)
        after_write: list[Callable[[], None]] = []
        if progress is not None and find(status["conditions"], INVALID_SPEC) is None:
            spec = policy.spec_model.model_validate(resource["spec"])
            step = progress({**resource, "status": {**(resource.get("status") or {}), **status}}, spec)
            # A phase the step moved on from at once is not worth an Event of its own.
            kept = [e for e in events if e.type == "Warning" or e.reason == step.status.get("phase")]
            status, events, after_write = step.status, kept + step.events, step.after_write
        if status_changes(resource.get("status") or {}, status):
            try:
                patch_status(
                    info.plural, meta["namespace"], meta["name"], status, meta.get("resourceVersion")
                )
            except ApiException as error:
                if error.status == 409:  # changed since we read it: recompute from the new copy
                    raise kopf.TemporaryError(
                        "the object changed while reconciling; retrying", delay=1
                    ) from error
                raise
        for action in after_write:
            action()
        for event in events:  # after the status write, so a retried reconcile does not repeat them
            try:
                post_event(resource, event.type, event.reason, event.message)
            except ApiException as error:
                logger.warning("could not post Event %s: %s", event.reason, error.reason)


def register_kind(info: KindInfo, policy: KindPolicy, progress: ProgressFn | None = None, *,
                  active: Callable[[Obj], bool] | None = None, interval: float = 2.0,
                  idle_interval: float | None = None) -> None:  # fmt: skip
    """The reconcile on create, on spec change and when the operator (re)starts; with `progress`,
    also every `interval` seconds while `active(status)` holds (waiting on Jobs, rollouts, ...),
    and every `idle_interval` seconds otherwise (things that change without telling the resource)."""

    def handler(*, body: kopf.Body, logger: Logger, **_: Any) -> None:
        reconcile(info, policy, progress, body, logger)

    for cause in (kopf.on.create, kopf.on.update, kopf.on.resume):
        cause(API_GROUP, API_VERSION, info.plural, id="core", backoff=2)(handler)
    if progress is not None and active is not None:
        is_active = active

        def when(status: Any, **_: Any) -> bool:
            return is_active(dict(status or {}))

        kopf.timer(API_GROUP, API_VERSION, info.plural, id="progress", interval=interval, when=when,
                   backoff=2)(handler)  # fmt: skip
        if idle_interval is not None:

            def idle(status: Any, **_: Any) -> bool:
                return not is_active(dict(status or {}))

            kopf.timer(API_GROUP, API_VERSION, info.plural, id="idle", interval=idle_interval, when=idle,
                       backoff=2)(handler)  # fmt: skip


def register_core(info: KindInfo, policy: KindPolicy) -> None:
    register_kind(info, policy)
