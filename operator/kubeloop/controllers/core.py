"""The reconcile every kind shares: plan (pure), write status, post Events on transitions."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubeloop import API_GROUP, API_VERSION
from kubeloop.api.v1alpha1 import KindInfo
from kubeloop.kube.events import post_event
from kubeloop.kube.status import patch_status
from kubeloop.operator.metrics import reconcile_observed
from kubeloop.planning.core import KindPolicy, plan_core

Logger = logging.Logger | logging.LoggerAdapter[Any]


def reconcile_core(info: KindInfo, policy: KindPolicy, body: kopf.Body, logger: Logger) -> None:
    resource: dict[str, Any] = copy.deepcopy(dict(body))
    with reconcile_observed(info.kind):
        plan = plan_core(policy, resource, datetime.now(UTC))
        if plan.changes(resource.get("status") or {}):
            meta = resource["metadata"]
            patch_status(info.plural, meta["namespace"], meta["name"], plan.status)
        for event in plan.events:  # after the status write, so a retried reconcile does not repeat them
            try:
                post_event(resource, event.type, event.reason, event.message)
            except ApiException as error:
                logger.warning("could not post Event %s: %s", event.reason, error.reason)


def register_core(info: KindInfo, policy: KindPolicy) -> None:
    """The same reconcile on create, on spec change and when the operator (re)starts."""

    def reconcile(*, body: kopf.Body, logger: Logger, **_: Any) -> None:
        reconcile_core(info, policy, body, logger)

    for cause in (kopf.on.create, kopf.on.update, kopf.on.resume):
        cause(API_GROUP, API_VERSION, info.plural, id="core", backoff=2)(reconcile)
