"""A restarted operator resumes from status alone: no repeated Events, no changed status.

In its own module so that no other operator process is alive while it runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_operator import KINDS, QUIET_WORKLOADS, apply_examples, events, objects, wait_observed
from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until

pytestmark = pytest.mark.cluster


def settled(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """Statuses once Job pods have all appeared (each changes a waiting message): equal twice in a row."""
    seen: list[dict[str, Any]] = []

    def unchanged() -> bool:
        seen.append({kind: items[0]["status"] for kind, items in objects(cluster, namespace).items()})
        return len(seen) > 1 and seen[-1] == seen[-2]

    wait_until(unchanged, 60, "statuses to settle", interval=2)
    return seen[-1]


def test_restarted_operator_resumes_without_duplicate_events(crds: Cluster, namespace: str) -> None:
    first = OperatorProcess(crds, "operator-first-life", QUIET_WORKLOADS).start()
    try:
        apply_examples(crds, namespace)
        for kind, items in objects(crds, namespace).items():
            wait_observed(crds, namespace, kind, items[0]["metadata"]["name"], 1)
        wait_until(lambda: len(events(crds, namespace)) >= len(KINDS), 30, "an Event per kind")
        statuses = settled(crds, namespace)
        before = sorted((e.involved_object.name, e.reason) for e in events(crds, namespace))
    finally:
        first.stop()
    second = OperatorProcess(crds, "operator-second-life", QUIET_WORKLOADS).start()
    try:
        # The new process has resumed every object once the counter shows a reconcile per kind.
        wait_until(lambda: all(second.reconciles(kind) >= 1 for kind in KINDS), 30, "the resume reconciles")
        assert sorted((e.involved_object.name, e.reason) for e in events(crds, namespace)) == before
        assert {kind: items[0]["status"] for kind, items in objects(crds, namespace).items()} == statuses
    finally:
        second.stop()
