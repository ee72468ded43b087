"""The whole loop, end to end, exactly as `make demo` runs it: the operator installed by the chart
as a pod, every workload a pod on the real node, traffic and feedback over HTTP through the router.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.e2e.loop import MODEL, Loop, Target
from tests.e2e.scenario import promoted_retrain, rejected_retrain, summary
from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until
from tests.infra.stack import OPERATOR_NAMESPACE, Stack

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def target(stack: Stack, cluster: Cluster) -> Iterator[Target]:
    stack.install_operator()
    assert stack.plane is not None and stack.minio is not None
    yield Target(str(stack.plane.kubeconfig), stack.minio.url, stack.minio.access_key, stack.minio.secret_key,
                 stack.minio.bucket)  # fmt: skip
    cluster.kubectl("delete", "-n", OPERATOR_NAMESPACE, "deployment/kubeloop-operator", "--wait=true")
    core = client.CoreV1Api(cluster.api)
    wait_until(lambda: not core.list_namespaced_pod(OPERATOR_NAMESPACE).items, 60, "the operator pod to go")


def stages(loop: Loop) -> dict[str, list[str]]:
    return {v["metadata"]["name"]: [h["stage"] for h in v["status"].get("stageHistory") or []]
            for v in loop.items("ModelVersion")}  # fmt: skip


def reasons(loop: Loop, kind: str, name: str) -> list[str]:
    events = client.CoreV1Api(loop.api).list_namespaced_event(
        loop.namespace, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}"
    )
    return [e.reason for e in sorted(events.items, key=lambda e: e.metadata.creation_timestamp)]


def test_drift_retrains_and_the_new_version_is_promoted_with_no_failed_request(target: Target) -> None:
    loop = Loop(target, namespace="loop")
    outcome = promoted_retrain(loop)
    assert outcome.traffic is not None
    outcome.traffic.stop()
    summary(loop, outcome)
    assert stages(loop) == {"churn-v1": ["Candidate", "Production", "Archived"],
                            "churn-v2": ["Candidate", "Staging", "Production"]}  # fmt: skip
    deployment = outcome.deployment
    assert deployment["stable"]["version"] == 2 and deployment["phase"] == "Available"
    assert [r["outcome"] for r in deployment["history"]] == ["Promoted"]
    assert {"Shadowing", "Canary", "Promoted"} <= set(reasons(loop, "ModelDeployment", MODEL))
    retrain = loop.get("TrainingRun", outcome.retrain)
    assert retrain["spec"]["dataset"]["uri"].endswith("/latest.csv")
    assert outcome.monitor["retrainCount"] == 1 and outcome.monitor["reportUri"].endswith(".html")
    assert outcome.traffic.sent > 500 and {"1", "2"} <= set(outcome.traffic.versions)
    assert outcome.traffic.failures == [], outcome.traffic.failures[:5]


def test_a_worse_retrain_is_rejected_v1_keeps_serving_and_the_monitor_waits_for_its_cooldown(
    target: Target,
) -> None:
    loop = Loop(target, namespace="loop-worse")
    outcome = rejected_retrain(loop)
    assert outcome.traffic is not None
    summary(loop, outcome)
    assert stages(loop) == {"churn-v1": ["Candidate", "Production"],
                            "churn-v2": ["Candidate", "Staging", "Rejected"]}  # fmt: skip
    assert outcome.deployment["stable"]["version"] == 1
    assert outcome.deployment["history"][-1]["outcome"] == "RolledBack"
    # The population is still shifted, so the monitor keeps finding drift, but holds back.
    monitor = loop.wait("ModelMonitor", MODEL, lambda s: s.get("consecutive", 0) >= 4, timeout=400)
    assert monitor["retrainCount"] == 1
    assert len(loop.items("TrainingRun")) == 2  # the first training and the one retrain
    outcome.traffic.stop()
    assert outcome.traffic.failures == [], outcome.traffic.failures[:5]
