"""The operator installed as the chart does (manifests/base): a pod with its ServiceAccount's RBAC.

In its own module: no other operator process may run while this one does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.cluster.test_operator import apply_examples, wait_observed
from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until
from tests.infra.stack import OPERATOR_NAMESPACE, Stack

pytestmark = pytest.mark.cluster
OPERATOR_ACCOUNT = f"system:serviceaccount:{OPERATOR_NAMESPACE}:kubeloop-operator"


@pytest.fixture(scope="module")
def installed(stack: Stack, cluster: Cluster) -> Iterator[Cluster]:
    stack.install_operator()
    yield cluster
    cluster.kubectl("delete", "-n", OPERATOR_NAMESPACE, "deployment/kubeloop-operator", "--wait=true")
    core = client.CoreV1Api(cluster.api)
    wait_until(lambda: not core.list_namespaced_pod(OPERATOR_NAMESPACE).items, 60, "the operator pod to go")


def can_i(cluster: Cluster, *args: str) -> bool:
    answer = cluster.kubectl("auth", "can-i", f"--as={OPERATOR_ACCOUNT}", *args, check=False).stdout.strip()
    return answer == "yes"


def test_operator_pod_runs_under_restricted_pod_security_and_reconciles(
    installed: Cluster, namespace: str
) -> None:
    core = client.CoreV1Api(installed.api)
    (pod,) = core.list_namespaced_pod(
        OPERATOR_NAMESPACE, label_selector="app.kubernetes.io/component=operator"
    ).items
    assert pod.spec.service_account_name == "kubeloop-operator"
    labels = core.read_namespace(OPERATOR_NAMESPACE).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # and the pod was admitted
    env = {e.name: e.value_from for e in pod.spec.containers[0].env if e.value_from}
    secrets = {name: source.secret_key_ref.name for name, source in env.items() if source.secret_key_ref}
    assert secrets == {"KUBELOOP_S3_ACCESS_KEY": "kubeloop-s3", "KUBELOOP_S3_SECRET_KEY": "kubeloop-s3"}
    # Its identity comes from the downward API: the image's uid has no passwd entry to derive one from.
    assert env["KUBELOOP_POD_NAME"].field_ref.field_path == "metadata.name"
    apply_examples(installed, namespace)
    status = wait_observed(installed, namespace, "TrainingRun", "churn-2024-06-01", 1)["status"]
    assert status["phase"] == "Searching"  # the search Job was created by the pod's own RBAC


@pytest.mark.parametrize(("verb", "resource", "allowed"), [
    ("patch", "trainingruns.kubeloop.io/status", True),
    ("watch", "modeldeployments.kubeloop.io", True),
    ("patch", "batchpredictions.kubeloop.io/status", True),
    ("create", "cronjobs.batch", True),  # scheduled batch predictions
    ("create", "batchpredictions.kubeloop.io", False),
    ("create", "events", True),
    ("update", "trainingruns.kubeloop.io", False),  # spec is the user's; status and annotations are patched
    ("get", "secrets", False),
    ("list", "pods", True),  # termination messages carry the Jobs' results
    ("create", "jobs.batch", True),
    ("delete", "jobs.batch", False),  # owner references let the garbage collector do it
    ("create", "pods", False),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("delete", "namespaces", False),
])  # fmt: skip
def test_operator_account_holds_least_privilege(
    installed: Cluster, verb: str, resource: str, allowed: bool
) -> None:
    assert can_i(installed, verb, resource, "--all-namespaces") is allowed
