"""The checked-in CRDs in a real kube-apiserver: installed, documented, defaulting, validating, immutable."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kubeloop.api import crdgen
from kubeloop.api.v1alpha1 import KINDS, KindInfo, TrainingRunSpec, kind_info
from kubeloop.api.v1alpha1.batchprediction import SCHEDULE_FIXED
from kubeloop.api.v1alpha1.modelversion import SPEC_IMMUTABLE
from kubeloop.api.v1alpha1.trainingrun import DatasetSpec, Estimator
from tests.cluster.conftest import CRDS
from tests.cluster.invalid_manifests import BP, EXAMPLES_DIR, INVALID, MV, TR, Invalid, Manifest, example
from tests.infra.fixtures import Cluster
from tests.infra.processes import wait_until

pytestmark = pytest.mark.cluster

EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
PLURALS = ",".join(kind.plural for kind in KINDS)
SHA = "0123456789abcdef" * 4
TEMPLATE = {
    "model": "churn",
    "dataset": {"uri": "s3://kubeloop/datasets/churn/latest.csv", "target": "churned"},
    "algorithm": {"estimator": "LogisticRegression"},
}
# Little more than the required fields: the server fills in the rest from the schema defaults.
SPARSE: dict[str, Manifest] = {
    "TrainingRun": {
        "metadata": {"name": "sparse"},
        "spec": {
            "model": "churn",
            "dataset": {"uri": "s3://kubeloop/datasets/churn/v1.csv", "target": "churned"},
            "algorithm": {
                "estimator": "RandomForestClassifier",
                "params": {"max_depth": None},  # None means something to scikit-learn: it must survive
                "search": {"space": {"n_estimators": {"values": [100, 300]}}},
            },
        },
    },
    "ModelVersion": {
        "metadata": {"name": "sparse-v1"},
        "spec": {"model": "sparse", "version": 1, "artifact": {"uri": "s3://kubeloop/m.onnx", "sha256": SHA}},
    },
    "ModelDeployment": {
        "metadata": {"name": "sparse"},
        "spec": {"model": "churn", "version": 1, "rollout": {"steps": [{"weight": 20}, {"weight": 100}]}},
    },
    "ModelMonitor": {
        "metadata": {"name": "sparse"},
        "spec": {"deployment": "churn", "retrain": {"enabled": True, "trainingRun": {"template": TEMPLATE}}},
    },
    "BatchPrediction": {
        "metadata": {"name": "sparse"},
        "spec": {
            "model": "churn",
            "version": 1,
            "input": {"uri": "s3://kubeloop/datasets/churn/customers/"},
            "output": {"uri": "s3://kubeloop/predictions/churn/"},
            "notify": {"webhook": {"url": "http://hooks.example.com/churn"}},
        },
    },
}
DOCUMENTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "TrainingRun": {
        "spec.deadline": "6h",
        "spec.split": {"testFraction": 0.2, "seed": 42, "stratify": True},
        "spec.algorithm.search.trials": 10,
        "spec.algorithm.search.strategy": "random",
        "spec.register": True,
    },
    "ModelVersion": {"spec.artifact.format": "onnx", "spec.params": {}},
    "ModelDeployment": {
        "spec.rollout.strategy": "Canary",
        "spec.rollout.steps.1.duration": "5m",
        "spec.rollout.shadow": {"percent": 100, "duration": "15m"},
    },
    "ModelMonitor": {"spec.schedule": "1h", "spec.retrain.trainingRun.template.deadline": "6h"},
    "BatchPrediction": {
        "spec.input.format": "csv",
        "spec.output": {
            "uri": "s3://kubeloop/predictions/churn/",
            "format": "csv",
            "includeInputColumns": False,
            "keyColumns": [],
        },
        "spec.shards": 1,
        "spec.chunkRows": 50_000,
        "spec.maxRejectFraction": 0.01,
        "spec.deadline": "2h",
        "spec.notify.on": ["Succeeded", "Failed"],
        "spec.suspend": False,
    },
}


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _submit(
    cluster: Cluster, namespace: str, manifest: Manifest, *command: str
) -> subprocess.CompletedProcess[str]:
    """`kubectl create` (or `command`) of `manifest` into `namespace`, with kubectl's strict field
    validation, as users get it."""
    manifest = copy.deepcopy(manifest)
    manifest.setdefault("apiVersion", "kubeloop.io/v1alpha1")
    manifest["metadata"]["namespace"] = namespace
    argv = [*(command or ["create"]), "-f", "-", "-o", "json"]
    return cluster.kubectl(*argv, check=False, input=json.dumps(manifest))


def _patch(cluster: Cluster, namespace: str, body: Manifest, *flags: str) -> subprocess.CompletedProcess[str]:
    """Merge-patch the example ModelVersion churn-v7."""
    patch = ["patch", "mv", "churn-v7", "-n", namespace, "--type=merge", "-p", json.dumps(body), *flags]
    return cluster.kubectl(*patch, check=False)


def _get(cluster: Cluster, namespace: str, *what: str) -> Any:
    return json.loads(cluster.kubectl("get", *what, "-n", namespace, "-o", "json").stdout)


def _stored(cluster: Cluster, namespace: str) -> list[str]:
    return cluster.kubectl("get", PLURALS, "-n", namespace, "-o", "name").stdout.split()


# --- installation --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_crd_is_established_and_stored_as_written(crds: Cluster, kind: KindInfo) -> None:
    crd = json.loads(crds.kubectl("get", "crd", crdgen.crd_name(kind), "-o", "json").stdout)
    conditions = {condition["type"]: condition["status"] for condition in crd["status"]["conditions"]}
    assert conditions["Established"] == conditions["NamesAccepted"] == "True"
    served = crd["spec"]
    written = yaml.safe_load((CRDS / crdgen.crd_filename(kind)).read_text())["spec"]
    assert served["versions"] == written["versions"], "the server dropped or rewrote part of the CRD"
    assert served["names"] == written["names"]


def test_crds_apply_without_warnings(crds: Cluster) -> None:
    """The server warns (and would later refuse) when CEL rules are too costly or schemas are odd."""
    result = crds.kubectl("apply", "--server-side", "--dry-run=server", "-f", str(CRDS))
    assert result.stdout.count("serverside-applied (server dry run)") == len(KINDS)
    assert "Warning" not in result.stderr, result.stderr


def test_kubeloop_category_lists_every_kind(crds: Cluster) -> None:
    resources = crds.kubectl("api-resources", "--categories=kubeloop", "-o", "name")
    assert sorted(resources.stdout.split()) == sorted(f"{kind.plural}.kubeloop.io" for kind in KINDS)


def test_explain_shows_the_model_descriptions(crds: Cluster) -> None:
    def explain() -> str:  # the OpenAPI document may lag a moment behind Established
        return crds.kubectl("explain", "trainingrun.spec.dataset", check=False).stdout

    wait_until(lambda: "FIELDS:" in explain(), 30, "kubectl explain trainingrun.spec.dataset")
    text = " ".join(explain().split())
    assert "KIND: TrainingRun" in text
    assert " ".join(str(TrainingRunSpec.model_fields["dataset"].description).split()) in text
    for name, field in DatasetSpec.model_fields.items():
        assert " ".join(str(field.description).split()) in text, name
    assert "uri <string> -required-" in text
    assert "target <string> -required-" in text
    assert "enum: csv, parquet" in text


# --- valid objects and defaults ------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_is_accepted_and_defaulted(crds: Cluster, namespace: str, path: Path) -> None:
    manifest = example(path.name)
    name, plural = manifest["metadata"]["name"], kind_info(manifest["kind"]).plural
    dry_run = _submit(crds, namespace, manifest, "apply", "--dry-run=server")
    assert dry_run.returncode == 0, dry_run.stderr
    assert _stored(crds, namespace) == []  # a dry run stores nothing

    created = _submit(crds, namespace, manifest)
    assert created.returncode == 0, created.stderr
    stored = _get(crds, namespace, plural, name)
    assert stored["metadata"]["generation"] == 1
    python = kind_info(manifest["kind"]).resource_model.model_validate(manifest)
    assert stored["spec"] == python.spec.to_dict()  # server defaults == model defaults
    if manifest["kind"] == "ModelDeployment":
        assert "abort" not in manifest["spec"]["rollout"]
        assert stored["spec"]["rollout"]["abort"] is False


@pytest.mark.parametrize("kind", sorted(SPARSE))
def test_sparse_manifest_gets_the_documented_defaults(crds: Cluster, namespace: str, kind: str) -> None:
    manifest = {"kind": kind, **copy.deepcopy(SPARSE[kind])}
    created = _submit(crds, namespace, manifest)
    assert created.returncode == 0, created.stderr
    spec = json.loads(created.stdout)["spec"]
    for path, expected in DOCUMENTED_DEFAULTS[kind].items():
        assert _at({"spec": spec}, path) == expected, path
    python = kind_info(kind).resource_model.model_validate(manifest)
    assert spec == python.spec.to_dict()  # server defaults == model defaults
    if kind == "TrainingRun":
        assert spec["algorithm"]["params"] == {"max_depth": None}


@pytest.mark.parametrize("estimator", list(Estimator), ids=str)
def test_server_and_python_agree_on_which_estimators_are_regressors(
    crds: Cluster, namespace: str, estimator: Estimator
) -> None:
    manifest = example(TR)
    manifest["spec"]["algorithm"] = {
        "estimator": estimator.value,
        "search": {"space": {"alpha": {"values": [0.1, 1.0]}}, "trials": 2, "metric": "r2"},
    }
    result = _submit(crds, namespace, manifest, "create", "--dry-run=server")
    try:
        kind_info("TrainingRun").resource_model.model_validate(manifest)
        python_error = ""
    except ValidationError as error:
        python_error = str(error)
    server_accepts, python_accepts = result.returncode == 0, python_error == ""
    assert server_accepts == python_accepts == estimator.is_regressor, result.stderr + python_error
    if not estimator.is_regressor:
        assert "search.metric must suit the estimator" in result.stderr
        assert "search.metric must suit the estimator" in python_error


# --- invalid objects ---------------------------------------------------------------------------

SUBMITTED: set[str] = set()


@pytest.fixture(scope="module")
def table_namespace(crds: Cluster) -> Iterator[str]:
    """One namespace for the whole invalid table, so that it can be checked for leftovers at the end."""
    name = f"t-invalid-{uuid.uuid4().hex[:5]}"
    crds.kubectl("create", "namespace", name)
    yield name
    crds.kubectl("delete", "namespace", name, "--wait=false")


def _assert_rejected(cluster: Cluster, namespace: str, case: Invalid) -> None:
    result = _submit(cluster, namespace, case.manifest())
    SUBMITTED.add(case.id)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert result.stdout == ""
    if case.field is None:
        assert case.message in result.stderr
    else:  # the message must be reported on the expected field
        reported = rf"(^|\* |is invalid: ){re.escape(case.field)}: .*{re.escape(case.message)}"
        assert re.search(reported, result.stderr, re.MULTILINE), result.stderr


@pytest.mark.parametrize("case", INVALID, ids=[case.id for case in INVALID])
def test_invalid_manifest_is_rejected(crds: Cluster, table_namespace: str, case: Invalid) -> None:
    _assert_rejected(crds, table_namespace, case)


def test_nothing_invalid_was_stored(crds: Cluster, table_namespace: str) -> None:
    for case in INVALID:  # the ones the table above did not run (e.g. deselected with -k)
        if case.id not in SUBMITTED:
            _assert_rejected(crds, table_namespace, case)
    assert {case.id for case in INVALID} == SUBMITTED
    assert _stored(crds, table_namespace) == []
    # Not a vacuous check: a valid object in the same namespace is listed.
    assert _submit(crds, table_namespace, example(MV)).returncode == 0
    assert _stored(crds, table_namespace) == ["modelversion.kubeloop.io/churn-v7"]


# --- immutability ------------------------------------------------------------------------------

SPEC_EDITS = {
    "free-form-params": {"params": {"max_depth": 7}},
    "metric-value": {"metrics": {"roc_auc": 0.99}},
    "artifact-digest": {"artifact": {"sha256": SHA}},
    "added-primary-metric": {"primaryMetric": "accuracy"},
    "removed-lineage-field": {"lineage": {"codeVersion": None}},
}


@pytest.fixture
def model_version(crds: Cluster, namespace: str) -> dict[str, Any]:
    created = _submit(crds, namespace, example(MV))
    assert created.returncode == 0, created.stderr
    stored: dict[str, Any] = json.loads(created.stdout)
    return stored


@pytest.mark.parametrize("edit", SPEC_EDITS.values(), ids=list(SPEC_EDITS))
def test_model_version_spec_edits_are_rejected(
    crds: Cluster, namespace: str, model_version: dict[str, Any], edit: dict[str, Any]
) -> None:
    patch = _patch(crds, namespace, {"spec": edit})
    assert patch.returncode != 0
    assert f"spec: Invalid value: {SPEC_IMMUTABLE.message}" in patch.stderr
    assert _get(crds, namespace, "mv", "churn-v7")["spec"] == model_version["spec"]


def test_model_version_replace_is_rejected_but_metadata_and_status_may_change(
    crds: Cluster, namespace: str, model_version: dict[str, Any]
) -> None:
    replaced = copy.deepcopy(model_version)
    replaced["spec"]["params"]["learning_rate"] = 0.1
    result = crds.kubectl("replace", "-f", "-", check=False, input=json.dumps(replaced))
    assert result.returncode != 0
    assert SPEC_IMMUTABLE.message in result.stderr

    assert _patch(crds, namespace, {"metadata": {"labels": {"kubeloop.io/reviewed": "true"}}}).returncode == 0
    status = {"stage": "Production", "score": 0.861, "phase": "Ready"}
    sneaky = {"status": status, "spec": {"version": 8}}  # spec sent to /status is ignored
    result = _patch(crds, namespace, sneaky, "--subresource=status")
    assert result.returncode == 0, result.stderr
    stored = _get(crds, namespace, "mv", "churn-v7")
    assert stored["status"] == status
    assert stored["spec"] == model_version["spec"]
    assert stored["metadata"]["generation"] == 1
    assert stored["metadata"]["labels"] == {"kubeloop.io/reviewed": "true"}
    header, row = crds.kubectl("get", "mv", "churn-v7", "-n", namespace).stdout.splitlines()
    columns = [c for c in kind_info("ModelVersion").printer_columns if c.priority == 0][:-1]  # not Age
    assert header.split() == ["NAME", *(c.name.upper() for c in columns), "AGE"]
    assert row.split()[:-1] == ["churn-v7", *(str(_at(stored, c.json_path[1:])) for c in columns)]

    result = _patch(crds, namespace, {"status": {"stage": "Gold"}}, "--subresource=status")
    assert result.returncode != 0
    assert 'status.stage: Unsupported value: "Gold"' in result.stderr


# --- BatchPrediction: one-off and scheduled are different objects ----------------------------------


@pytest.mark.parametrize("change", ["add", "remove"])
def test_batch_prediction_schedule_cannot_be_added_or_removed(
    crds: Cluster, namespace: str, change: str
) -> None:
    manifest = example(BP)
    if change == "add":
        for field in ("schedule", "timeZone"):
            del manifest["spec"][field]
    created = _submit(crds, namespace, manifest)
    assert created.returncode == 0, created.stderr
    if change == "add":
        body: Manifest = {"spec": {"schedule": "0 3 * * *"}}
    else:
        body = {"spec": {"schedule": None, "timeZone": None}}
    name = manifest["metadata"]["name"]
    patch = ["patch", "bp", name, "-n", namespace, "--type=merge", "-p", json.dumps(body)]
    result = crds.kubectl(*patch, check=False)
    assert result.returncode != 0
    assert f"spec: Invalid value: {SCHEDULE_FIXED.message}" in result.stderr, result.stderr
    # Other edits stay possible: the schedule itself, the shards.
    edit = {"spec": {"shards": 2, **({"schedule": "0 4 * * *"} if change == "remove" else {})}}
    edited = crds.kubectl("patch", "bp", name, "-n", namespace, "--type=merge", "-p", json.dumps(edit))
    assert edited.returncode == 0, edited.stderr
