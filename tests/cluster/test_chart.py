"""The Helm chart against the real control plane, with the real helm binary.

- Every documented option renders objects the API server admits (server-side dry run) into a
  namespace that enforces PodSecurity `restricted`; every pod template is admitted as a Pod.
- A real `helm install` of the chart, CRDs included, in cluster-wide mode and in namespaced mode:
  the operator pod becomes Ready on the real node, reconciles with the settings the chart gave it,
  and holds exactly the chart's RBAC (`kubectl auth can-i --as=<its ServiceAccount>`).
- `helm uninstall` stops it (waited for: other modules assume a single operator) and keeps the CRDs.

In its own module, with its own releases: no other operator runs while these do.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.test_operator import EXAMPLES, GROUP, KINDS, VERSION
from tests.infra.fixtures import Cluster
from tests.infra.minio_server import MinioServer
from tests.infra.node.node import node_name
from tests.infra.processes import wait_until
from tests.unit.packaging.chart import CHART, CI_VALUES, CLUSTER_RULES, NAMESPACED_RULES, Obj

pytestmark = pytest.mark.cluster
# Workload images that exist nowhere: nothing can be pulled here, so Job pods wait (ErrImagePull)
# instead of training.
QUIET_IMAGES = ("images.trainer.repository=unmapped/trainer", "images.server.repository=unmapped/server")
PSA_LABELS = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
# prometheus-operator's CRDs are not installed here: the unit tests check those two kinds.
NOT_SERVED_HERE = {"ServiceMonitor", "PrometheusRule"}
PLURALS = list(KINDS.values())
OBJECT_VERBS = ("get", "list", "watch", "patch")


def run(argv: list[str], input: str | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    result = subprocess.run(argv, input=input, capture_output=True, text=True, check=False, timeout=300,
                            env={**os.environ, **(env or {})})  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{result.stderr}")
    return result


def kubectl(
    cluster: Cluster, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run([str(cluster.plane.bins.kubectl), f"--kubeconfig={cluster.kubeconfig}", *args], input, check)


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    homes = {
        f"HELM_{d}_HOME": str(cluster.plane.root / f"helm-{d.lower()}") for d in ("CACHE", "CONFIG", "DATA")
    }
    argv = [str(cluster.plane.bins.require("helm").helm), f"--kubeconfig={cluster.kubeconfig}", *args]
    return run(argv, check=check, env=homes)


def create_namespace(cluster: Cluster, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    client.CoreV1Api(cluster.api).create_namespace({"metadata": {"name": name, "labels": labels or {}}})
    return name


def delete_namespace(cluster: Cluster, name: str) -> None:
    kubectl(cluster, "delete", "namespace", name, "--wait=false", "--ignore-not-found")


def can_i(cluster: Cluster, account: str, verb: str, resource: str, *where: str) -> bool:
    answer = kubectl(cluster, "auth", "can-i", f"--as={account}", verb, resource, *where, check=False)
    return answer.stdout.strip() == "yes"


def create_s3_secret(cluster: Cluster, namespace: str, minio: MinioServer) -> None:
    keys = [f"--from-literal=accessKey={minio.access_key}", f"--from-literal=secretKey={minio.secret_key}"]
    secret = kubectl(cluster, "create", "secret", "generic", "kubeloop-s3", f"--namespace={namespace}", *keys,
                     "--dry-run=client", "-o=yaml").stdout  # fmt: skip
    kubectl(cluster, "apply", "-f", "-", input=secret)


def pods(cluster: Cluster, namespace: str, selector: str = "") -> list[Any]:
    return list(client.CoreV1Api(cluster.api).list_namespaced_pod(namespace, label_selector=selector).items)


def ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


# --- server-side dry run of every option -------------------------------------------------------------


@pytest.fixture(scope="module")
def restricted(cluster: Cluster) -> Iterator[str]:
    """A namespace that enforces (and warns about) PodSecurity `restricted`."""
    name = create_namespace(cluster, "chart-dry-run", PSA_LABELS)
    yield name
    delete_namespace(cluster, name)


def pod_templates(objects: list[Obj]) -> list[tuple[str, Obj]]:
    found = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            found.append((f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]))
    return found


def dry_run(cluster: Cluster, namespace: str, values: list[str], sets: list[str]) -> tuple[list[Obj], str]:
    """`helm template` into the namespace, then a server-side dry-run apply: (objects, warnings)."""
    rendered = helm(cluster, "template", "kubeloop-dry", str(CHART), f"--namespace={namespace}",
                    *(f"--values={v}" for v in values), *(f"--set={s}" for s in sets)).stdout  # fmt: skip
    objects = [o for o in yaml.safe_load_all(rendered) if o and o["kind"] not in NOT_SERVED_HERE]
    manifest = yaml.safe_dump_all(objects)
    applied = kubectl(cluster, "apply", "--server-side", "--force-conflicts", "--dry-run=server",
                      "--field-manager=chart-dry-run", "-f", "-", input=manifest)  # fmt: skip
    assert len(applied.stdout.strip().splitlines()) == len(objects), applied.stdout
    return objects, applied.stderr


def admit_as_pod(cluster: Cluster, namespace: str, template: Obj) -> subprocess.CompletedProcess[str]:
    """PodSecurity enforces on Pods, not on their controllers: a dry-run create of the template as one.
    The ServiceAccount is the namespace's default, since a dry run does not create the chart's."""
    metadata = {"generateName": "dry-run-", "namespace": namespace, "labels": template["metadata"]["labels"]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
           "spec": {**template["spec"], "serviceAccountName": "default"}}  # fmt: skip
    return kubectl(cluster, "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.name.removesuffix("-values.yaml") for p in CI_VALUES])
def test_every_option_is_admitted_by_the_api_server_under_restricted(
    values: Path, cluster: Cluster, crds: Cluster, restricted: str
) -> None:
    # Watched namespaces and the dashboard's namespace must exist: point them at this one.
    chosen = yaml.safe_load(values.read_text()) or {}
    sets = [f"watchNamespaces={{{restricted}}}"] if chosen.get("watchNamespaces") else []
    sets += [f"metrics.grafanaDashboard.namespace={restricted}"]
    objects, warnings = dry_run(cluster, restricted, [str(values)], sets)
    assert "PodSecurity" not in warnings, warnings  # the namespace warns about controllers' templates
    for owner, template in pod_templates(objects):
        created = admit_as_pod(cluster, restricted, template)
        assert created.returncode == 0, f"{owner} from {values.name}: {created.stderr}"


def test_the_dry_run_refuses_what_restricted_forbids(
    cluster: Cluster, crds: Cluster, restricted: str
) -> None:
    """Control for the test above: the same checks catch a pod that may escalate privileges."""
    objects, warnings = dry_run(
        cluster, restricted, [], ["operator.securityContext.allowPrivilegeEscalation=true"]
    )
    assert 'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation' in warnings
    ((owner, template),) = pod_templates(objects)
    created = admit_as_pod(cluster, restricted, template)
    assert created.returncode != 0 and "violates PodSecurity" in created.stderr, owner


def test_bundled_minio_bucket_job_creates_the_bucket(cluster: Cluster, minio: MinioServer) -> None:
    """The chart's bucket Job (minio.enabled), run for real: here against the session's MinIO, since
    the local node runs no minio/minio image. It runs the operator image's Python, under restricted."""
    namespace = create_namespace(cluster, "chart-bucket", PSA_LABELS)
    bucket = f"chart-{uuid.uuid4().hex[:8]}"
    try:
        create_s3_secret(cluster, namespace, minio)
        sets = [
            f"--set={s}" for s in ("minio.enabled=true", f"s3.endpoint={minio.url}", f"s3.bucket={bucket}")
        ]
        job = helm(cluster, "template", "kubeloop", str(CHART), f"--namespace={namespace}",
                   "--show-only=templates/minio-bucket.yaml", *sets).stdout  # fmt: skip
        kubectl(cluster, "apply", "-f", "-", input=job)
        kubectl(cluster, "wait", f"--namespace={namespace}", "--for=condition=Complete", "--timeout=60s",
                "job/kubeloop-minio-bucket")  # fmt: skip
        assert minio.client().bucket_exists(bucket)
    finally:
        delete_namespace(cluster, namespace)
        if minio.client().bucket_exists(bucket):
            minio.client().remove_bucket(bucket)


# --- real installs ---------------------------------------------------------------------------------


@dataclass
class Release:
    cluster: Cluster
    name: str
    namespace: str
    objects: list[Obj]

    @property
    def account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}-operator"

    def operator_pod(self) -> Any:
        (pod,) = pods(self.cluster, self.namespace, "app.kubernetes.io/component=operator")
        return pod


def install(cluster: Cluster, minio: MinioServer, name: str, namespace: str, *sets: str) -> Release:
    """The S3 Secret, then `helm install` and wait for the operator to be Ready."""
    create_s3_secret(cluster, namespace, minio)
    values = [f"s3.endpoint={minio.url}", f"s3.bucket={minio.bucket}", *QUIET_IMAGES, *sets]
    # --take-ownership: the CRDs may already be there (applied from crds/, or kept by a release).
    helm(cluster, "install", name, str(CHART), f"--namespace={namespace}", "--take-ownership",
         "--wait=watcher", "--timeout=180s", *(f"--set={v}" for v in values))  # fmt: skip
    manifest = helm(cluster, "get", "manifest", name, f"--namespace={namespace}").stdout
    return Release(cluster, name, namespace, [o for o in yaml.safe_load_all(manifest) if o])


def uninstall(release: Release) -> None:
    """Uninstall, and wait until the operator's pod is gone."""
    helm(release.cluster, "uninstall", release.name, f"--namespace={release.namespace}", "--wait",
         "--timeout=120s", "--ignore-not-found")  # fmt: skip
    wait_until(lambda: not pods(release.cluster, release.namespace), 90, f"the {release.name} pods to go")


def apply_and_wait(cluster: Cluster, namespace: str, path: Path) -> dict[str, Any]:
    kubectl(cluster, "apply", f"--namespace={namespace}", "-f", str(path))
    body = yaml.safe_load(path.read_text())
    custom = client.CustomObjectsApi(cluster.api)
    seen: dict[str, Any] = {}

    def observed() -> bool:
        seen.update(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, KINDS[body["kind"]],
                                                        body["metadata"]["name"]))  # fmt: skip
        return bool((seen.get("status") or {}).get("observedGeneration"))

    wait_until(observed, 60, f"{body['kind']} {body['metadata']['name']} to be reconciled")
    return seen


def delete_examples(cluster: Cluster, namespace: str) -> None:
    """While the operator still runs, so that it releases its finalizers (Kopf puts one on kinds with
    a timer: TrainingRun and ModelVersion). A busy two-core machine took over 60 s once."""
    kubectl(cluster, "delete", f"--namespace={namespace}", "-f", str(EXAMPLES), "--ignore-not-found",
            "--wait=true", "--timeout=180s")  # fmt: skip


# What the cluster-wide operator may do anywhere, and what it may not.
CLUSTER_WIDE_ACCESS = [
    *[(verb, f"{plural}.kubeloop.io", True) for plural in PLURALS for verb in OBJECT_VERBS],
    *[(verb, f"{plural}.kubeloop.io/status", True) for plural in PLURALS for verb in ("get", "patch")],
    ("create", "modelversions.kubeloop.io", True),
    ("create", "trainingruns.kubeloop.io", True),  # a drifting monitor retrains
    ("update", "trainingruns.kubeloop.io", False),  # spec is the user's
    ("delete", "modelversions.kubeloop.io", False),
    ("create", "batchpredictions.kubeloop.io", False),  # users create them; the operator follows them
    *[(verb, "jobs.batch", True) for verb in ("get", "list", "watch", "create")],
    ("delete", "jobs.batch", False),  # owner references let the garbage collector do it
    ("get", "pods", True), ("list", "pods", True), ("create", "pods", False),
    ("create", "events", True),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", True),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("watch", "namespaces", True), ("delete", "namespaces", False),
    ("get", "secrets", False), ("list", "secrets", False), ("watch", "secrets", False),
    ("get", "configmaps", True), ("delete", "configmaps", False), ("create", "deployments.apps", True),
    ("delete", "deployments.apps", True),
    ("update", "deployments.apps", False), ("create", "cronjobs.batch", True),
    ("watch", "endpointslices.discovery.k8s.io", True), ("create", "endpointslices.discovery.k8s.io", False),
    ("create", "roles.rbac.authorization.k8s.io", True),
    ("create", "clusterroles.rbac.authorization.k8s.io", False),
    ("delete", "roles.rbac.authorization.k8s.io", False),
]  # fmt: skip


@pytest.fixture(scope="class")
def cluster_wide(cluster: Cluster, minio: MinioServer) -> Iterator[Release]:
    """The default install: CRDs with the release, ClusterRole, every namespace watched."""
    namespace = create_namespace(cluster, "kubeloop-chart", PSA_LABELS)
    installed = install(cluster, minio, "kubeloop-chart", namespace)
    yield installed
    uninstall(installed)
    delete_namespace(cluster, namespace)


class TestClusterWide:
    """The default install: CRDs with the release, ClusterRole, every namespace watched."""

    def test_everything_is_admitted_and_the_operator_becomes_ready_on_the_node(
        self, cluster_wide: Release
    ) -> None:
        kinds = sorted({o["kind"] for o in cluster_wide.objects})
        assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "CustomResourceDefinition",
                         "Deployment", "Service", "ServiceAccount"]  # fmt: skip
        pod = cluster_wide.operator_pod()
        assert ready(pod) and pod.spec.node_name == node_name(0)
        assert pod.spec.service_account_name == "kubeloop-chart-operator"
        assert pod.spec.containers[0].image == "kubeloop/operator:0.1.0"
        core = client.CoreV1Api(cluster_wide.cluster.api)
        labels = core.read_namespace(cluster_wide.namespace).metadata.labels
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # and the pod was admitted
        for crd in (o for o in cluster_wide.objects if o["kind"] == "CustomResourceDefinition"):
            served = kubectl(cluster_wide.cluster, "get", "crd", crd["metadata"]["name"], "-o=json").stdout
            assert json.loads(served)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def test_the_operator_runs_as_65532_on_a_read_only_root(self, cluster_wide: Release) -> None:
        """Inside the operator's container, as its image and the chart run it (kubectl exec through the
        kubelet): its uid and gid, no passwd entry for them, and a root filesystem it cannot write."""
        pod = cluster_wide.operator_pod().metadata.name
        script = (
            "import os, pwd, json\n"
            "try:\n    open('/x', 'w'); write = 'written'\nexcept OSError as e:\n    write = e.strerror\n"
            "try:\n    pwd.getpwuid(os.getuid()); name = 'found'\nexcept KeyError:\n    name = 'none'\n"
            "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'passwd': name, 'write': write}))"
        )
        shown = kubectl(cluster_wide.cluster, "exec", f"--namespace={cluster_wide.namespace}", pod, "--",
                        "python", "-c", script).stdout  # fmt: skip
        expected = {"uid": 65532, "gid": 65532, "passwd": "none", "write": "Read-only file system"}
        assert json.loads(shown) == expected

    def test_metrics_service_reaches_the_operator(self, cluster_wide: Release) -> None:
        discovery = client.DiscoveryV1Api(cluster_wide.cluster.api)
        selector = "kubernetes.io/service-name=kubeloop-chart-operator-metrics"

        def endpoint_ready() -> bool:
            slices = discovery.list_namespaced_endpoint_slice(
                cluster_wide.namespace, label_selector=selector
            ).items
            return any(e.conditions.ready for s in slices for e in s.endpoints or [])

        wait_until(endpoint_ready, 30, "the metrics Service's endpoint")
        (endpoint_slice,) = discovery.list_namespaced_endpoint_slice(
            cluster_wide.namespace, label_selector=selector
        ).items
        (port,) = endpoint_slice.ports
        (address,) = endpoint_slice.endpoints[0].addresses
        assert (port.name, port.port) == ("metrics", 8080)
        with urllib.request.urlopen(f"http://{address}:{port.port}/metrics", timeout=5) as response:
            assert "kubeloop_reconcile_total" in response.read().decode()

    def test_operator_reconciles_with_the_charts_settings(
        self, cluster_wide: Release, namespace: str, minio: MinioServer
    ) -> None:
        try:
            run = apply_and_wait(cluster_wide.cluster, namespace, EXAMPLES / "trainingrun-churn.yaml")
            status = run["status"]
            assert status["phase"] == "Searching"  # it created the search Job, with the chart's RBAC
            jobs = client.BatchV1Api(cluster_wide.cluster.api).list_namespaced_job(namespace).items
            images = {c.image for job in jobs for c in job.spec.template.spec.containers}
            assert images == {"unmapped/trainer:0.1.0"}  # KUBELOOP_TRAINER_IMAGE from the chart's values
            env = {e.name: e for job in jobs for c in job.spec.template.spec.containers for e in c.env or []}
            assert env["KUBELOOP_S3_ENDPOINT"].value == minio.url
            assert env["KUBELOOP_S3_BUCKET"].value == minio.bucket
            assert env["KUBELOOP_S3_SECRET_KEY"].value_from.secret_key_ref.name == "kubeloop-s3"
        finally:
            delete_examples(cluster_wide.cluster, namespace)

    @pytest.mark.parametrize(("verb", "resource", "allowed"), CLUSTER_WIDE_ACCESS)
    def test_operator_account_has_exactly_the_charts_rbac(
        self, cluster_wide: Release, verb: str, resource: str, allowed: bool
    ) -> None:
        account = cluster_wide.account
        assert can_i(cluster_wide.cluster, account, verb, resource, "--all-namespaces") is allowed

    def test_the_rbac_in_the_cluster_is_the_charts(self, cluster_wide: Release) -> None:
        rbac = client.RbacAuthorizationV1Api(cluster_wide.cluster.api)
        role = rbac.read_cluster_role("kubeloop-chart-operator")
        served = [{"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs} for r in role.rules]
        assert served == NAMESPACED_RULES + CLUSTER_RULES

    def test_zz_uninstall_stops_the_operator_and_keeps_the_crds(self, cluster_wide: Release) -> None:
        uninstall(cluster_wide)
        assert not pods(cluster_wide.cluster, cluster_wide.namespace)
        apps = client.AppsV1Api(cluster_wide.cluster.api)
        assert not apps.list_namespaced_deployment(cluster_wide.namespace).items
        for crd in (o for o in cluster_wide.objects if o["kind"] == "CustomResourceDefinition"):
            kubectl(cluster_wide.cluster, "get", "crd", crd["metadata"]["name"])


@pytest.fixture(scope="class")
def namespaced(cluster: Cluster, crds: Cluster, minio: MinioServer) -> Iterator[tuple[Release, str, str]]:
    namespace = create_namespace(cluster, "kubeloop-chart-ns", PSA_LABELS)
    watched = create_namespace(cluster, "chart-watched")
    other = create_namespace(cluster, "chart-unwatched")
    installed = install(cluster, minio, "kubeloop-chart-ns", namespace, f"watchNamespaces={{{watched}}}",
                        "crds.enabled=false")  # fmt: skip
    yield installed, watched, other
    for name in (watched, other):
        delete_examples(cluster, name)
    uninstall(installed)
    for name in (namespace, watched, other):
        delete_namespace(cluster, name)


class TestNamespaced:
    """watchNamespaces: a Role in each watched namespace; CRDs managed outside the release."""

    def test_operator_reconciles_only_the_watched_namespace(
        self, namespaced: tuple[Release, str, str]
    ) -> None:
        installed, watched, other = namespaced
        assert ready(installed.operator_pod())
        assert sorted({o["kind"] for o in installed.objects}) == [
            "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Role", "RoleBinding", "Service",
            "ServiceAccount"]  # fmt: skip
        monitor = EXAMPLES / "modelmonitor-churn.yaml"
        kubectl(installed.cluster, "apply", f"--namespace={other}", "-f", str(monitor))
        assert apply_and_wait(installed.cluster, watched, monitor)["status"]["phase"]
        unwatched = client.CustomObjectsApi(installed.cluster.api).get_namespaced_custom_object(
            GROUP, VERSION, other, "modelmonitors", "churn"
        )
        assert "status" not in unwatched  # reconciled in `watched` first would have meant this one too

    @pytest.mark.parametrize(("verb", "resource", "where", "allowed"), [
        ("patch", "trainingruns.kubeloop.io/status", "watched", True),
        ("create", "jobs.batch", "watched", True),
        ("list", "pods", "watched", True),
        ("create", "events", "watched", True),
        ("patch", "trainingruns.kubeloop.io/status", "other", False),
        ("create", "jobs.batch", "other", False),
        ("list", "pods", "other", False),
        ("get", "secrets", "watched", False),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", "cluster", True),
        ("watch", "namespaces", "cluster", True),
        ("list", "trainingruns.kubeloop.io", "cluster", False),  # only namespace by namespace
    ])  # fmt: skip
    def test_operator_account_is_confined_to_the_watched_namespaces(
        self, namespaced: tuple[Release, str, str], verb: str, resource: str, where: str, allowed: bool
    ) -> None:
        installed, watched, other = namespaced
        scope = {"watched": [f"--namespace={watched}"], "other": [f"--namespace={other}"],
                 "cluster": ["--all-namespaces"]}[where]  # fmt: skip
        assert can_i(installed.cluster, installed.account, verb, resource, *scope) is allowed
