"""The operator core against the real control plane: status, conditions, Events, restarts, apply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.operator_process import OperatorProcess
from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until

pytestmark = pytest.mark.cluster
EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
GROUP, VERSION = "kubeloop.io", "v1alpha1"
KINDS = {"TrainingRun": "trainingruns", "ModelVersion": "modelversions",
         "ModelDeployment": "modeldeployments", "ModelMonitor": "modelmonitors",
         "BatchPrediction": "batchpredictions"}  # fmt: skip
# The example run searches, the example version is validated: both start a Job at once. The example
# batch prediction waits for that version to be validated.
FIRST_PHASE = {"TrainingRun": "Searching", "ModelVersion": "Validating",
               "ModelDeployment": "Progressing", "ModelMonitor": "InsufficientData",
               "BatchPrediction": "Pending"}  # fmt: skip
# Workload images that exist nowhere: nothing can be pulled here, so Job pods wait (ErrImagePull) and
# statuses settle.
QUIET_WORKLOADS = {
    "KUBELOOP_TRAINER_IMAGE": "unmapped/trainer:test",
    "KUBELOOP_SERVER_IMAGE": "unmapped/server:test",
}


@pytest.fixture(scope="module")
def operator(crds: Cluster) -> Iterator[OperatorProcess]:
    running = OperatorProcess(crds, env=QUIET_WORKLOADS).start()
    yield running
    running.stop()


def objects(cluster: Cluster, namespace: str) -> dict[str, list[dict[str, Any]]]:
    custom = client.CustomObjectsApi(cluster.api)
    return {kind: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]
            for kind, plural in KINDS.items()}  # fmt: skip


def get(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    custom = client.CustomObjectsApi(cluster.api)
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, KINDS[kind], name))


def events(cluster: Cluster, namespace: str) -> list[client.CoreV1Event]:
    """The operator's Events (the Job controller posts its own about the Jobs)."""
    listed = client.CoreV1Api(cluster.api).list_namespaced_event(namespace).items
    return [e for e in listed if e.source.component == "kubeloop"]


def wait_observed(cluster: Cluster, namespace: str, kind: str, name: str, generation: int) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def observed() -> bool:
        seen[:] = [get(cluster, namespace, kind, name)]
        return (seen[0].get("status") or {}).get("observedGeneration") == generation

    wait_until(observed, 30, f"{kind} {name} to observe generation {generation}")
    return seen[0]


def apply_examples(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))


def test_every_kind_gets_generation_phase_conditions_and_columns(
    operator: OperatorProcess, namespace: str, crds: Cluster
) -> None:
    apply_examples(crds, namespace)
    for kind, items in objects(crds, namespace).items():
        (item,) = items
        status = wait_observed(crds, namespace, kind, item["metadata"]["name"], 1)["status"]
        assert status["phase"] == FIRST_PHASE[kind]
        assert status["conditions"]  # the kind's summary condition (BatchPrediction: VersionResolved too)
        for summary in status["conditions"]:
            assert summary["observedGeneration"] == 1 and summary["reason"] and summary["message"]
    listing = crds.kubectl("get", "kubeloop", "-n", namespace).stdout
    for kind, phase in FIRST_PHASE.items():
        row = next(line for line in listing.splitlines() if line.startswith(f"{kind.lower()}.kubeloop.io/"))
        assert phase in row.split(), f"{kind} row lacks its phase column: {row!r}"
    expected = sorted(FIRST_PHASE.values())
    wait_until(lambda: len(events(crds, namespace)) >= len(expected), 30, "an Event per kind")
    assert sorted(e.reason for e in events(crds, namespace)) == expected  # one per transition, no more


def test_spec_change_is_observed_without_moving_unchanged_conditions(
    operator: OperatorProcess, namespace: str, crds: Cluster
) -> None:
    apply_examples(crds, namespace)
    before = wait_observed(crds, namespace, "TrainingRun", "churn-2024-06-01", 1)["status"]
    crds.kubectl("patch", "-n", namespace, "trainingrun", "churn-2024-06-01", "--type=merge",
                 "-p", '{"spec": {"split": {"seed": 7}}}')  # fmt: skip
    after = wait_observed(crds, namespace, "TrainingRun", "churn-2024-06-01", 2)["status"]
    assert after["phase"] == "Searching"
    assert after["conditions"][0]["observedGeneration"] == 2
    # Status did not change, so the transition time must not move.
    assert after["conditions"][0]["lastTransitionTime"] == before["conditions"][0]["lastTransitionTime"]
    assert len(events(crds, namespace)) == len(KINDS)  # no new transition, no new Event


def test_spec_error_cel_cannot_see_is_a_condition_and_one_warning(
    operator: OperatorProcess, namespace: str, crds: Cluster
) -> None:
    apply_examples(crds, namespace)
    wait_observed(crds, namespace, "TrainingRun", "churn-2024-06-01", 1)
    # max_depth is also in the search space: the server accepts it, the operator cannot act on it.
    crds.kubectl("patch", "-n", namespace, "trainingrun", "churn-2024-06-01", "--type=merge",
                 "-p", '{"spec": {"algorithm": {"params": {"max_depth": 3}}}}')  # fmt: skip
    status = wait_observed(crds, namespace, "TrainingRun", "churn-2024-06-01", 2)["status"]
    invalid = next(c for c in status["conditions"] if c["type"] == "InvalidSpec")
    assert status["phase"] == "Failed" and invalid["status"] == "True"
    assert (
        "spec.algorithm.params.max_depth: also searched in spec.algorithm.search.space" in invalid["message"]
    )
    wait_until(lambda: any(e.type == "Warning" for e in events(crds, namespace)), 30, "the Warning Event")
    warnings = [e for e in events(crds, namespace) if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["InvalidSpec"]
    assert warnings[0].involved_object.name == "churn-2024-06-01"

    crds.kubectl("patch", "-n", namespace, "trainingrun", "churn-2024-06-01", "--type=json",
                 "-p", '[{"op": "remove", "path": "/spec/algorithm/params/max_depth"}]')  # fmt: skip
    status = wait_observed(crds, namespace, "TrainingRun", "churn-2024-06-01", 3)["status"]
    assert status["phase"] == "Searching"  # a spec error does not end a run; the fix resumes it
    assert [c["type"] for c in status["conditions"]] == ["Succeeded"]


def test_operator_serves_metrics_and_health(operator: OperatorProcess) -> None:
    assert operator.healthy()
    text = operator.metrics()
    assert "kubeloop_reconcile_duration_seconds_bucket" in text
    assert "kubeloop_reconcile_errors_total" in text


def test_children_are_applied_idempotently_and_collected_with_their_owner(
    crds: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(crds.kubeconfig))
    from kubeloop.kube.apply import apply, owned  # noqa: PLC0415 - after KUBECONFIG is set

    apply_examples(crds, namespace)
    owner = get(crds, namespace, "TrainingRun", "churn-2024-06-01")
    child = owned({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn-child"},
                   "data": {"k": "v"}}, owner)  # fmt: skip
    first, again = apply(child), apply(child)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]  # a no-op
    assert [f["manager"] for f in first["metadata"]["managedFields"]] == ["kubeloop"]
    crds.kubectl("delete", "-n", namespace, "trainingrun", "churn-2024-06-01")
    core = client.CoreV1Api(crds.api)

    def collected() -> bool:
        return "churn-child" not in [
            c.metadata.name for c in core.list_namespaced_config_map(namespace).items
        ]

    # The garbage collector learns new CRDs on its 30 s discovery resync, as in any cluster.
    wait_until(collected, 90, "garbage collection of the owned ConfigMap")
