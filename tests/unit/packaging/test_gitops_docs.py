"""docs/gitops.md: its Argo CD health checks run in a real Lua 5.1 interpreter (the language of Argo
CD's gopher-lua, through lupa from PyPI) for every phase of every kind, and its Applications are
well formed, the chart's values included."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeloop.api.v1alpha1.batchprediction import BatchPhase
from kubeloop.api.v1alpha1.modeldeployment import DeploymentPhase
from kubeloop.api.v1alpha1.modelmonitor import MonitorPhase
from kubeloop.api.v1alpha1.modelversion import VersionPhase
from kubeloop.api.v1alpha1.trainingrun import TrainingPhase
from tests.unit.packaging.chart import CHART, helm
from tests.unit.packaging.images import REPO
from tests.unit.packaging.wheelhouse import WHEELHOUSE, pip_offline_first

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
DOC = REPO / "docs" / "gitops.md"
Health = Callable[[dict[str, Any]], tuple[str, str]]
# kind -> (summary condition, phase -> Argo CD health): the table in docs/gitops.md.
EXPECTED: dict[str, tuple[str, dict[str, str]]] = {
    "TrainingRun": ("Succeeded", {
        TrainingPhase.PENDING: "Progressing", TrainingPhase.VALIDATING: "Progressing",
        TrainingPhase.SEARCHING: "Progressing", TrainingPhase.TRAINING: "Progressing",
        TrainingPhase.SUCCEEDED: "Healthy", TrainingPhase.FAILED: "Degraded"}),
    "ModelVersion": ("Validated", {
        VersionPhase.PENDING: "Progressing", VersionPhase.VALIDATING: "Progressing",
        VersionPhase.READY: "Healthy", VersionPhase.FAILED: "Degraded"}),
    "ModelDeployment": ("Available", {
        DeploymentPhase.AVAILABLE: "Healthy", DeploymentPhase.PROGRESSING: "Progressing",
        DeploymentPhase.SHADOWING: "Progressing", DeploymentPhase.CANARY: "Progressing",
        DeploymentPhase.AWAITING_APPROVAL: "Suspended", DeploymentPhase.ROLLED_BACK: "Degraded",
        DeploymentPhase.DEGRADED: "Degraded"}),
    "ModelMonitor": ("Healthy", {
        MonitorPhase.HEALTHY: "Healthy", MonitorPhase.INSUFFICIENT_DATA: "Healthy",
        MonitorPhase.DRIFTING: "Degraded", MonitorPhase.DEGRADED: "Degraded"}),
    "BatchPrediction": ("Succeeded", {
        BatchPhase.SUCCEEDED: "Healthy", BatchPhase.SCHEDULED: "Healthy", BatchPhase.PENDING: "Progressing",
        BatchPhase.RUNNING: "Progressing", BatchPhase.SUSPENDED: "Suspended", BatchPhase.FAILED: "Degraded"}),
}  # fmt: skip
PHASES = {"TrainingRun": TrainingPhase, "ModelVersion": VersionPhase, "ModelDeployment": DeploymentPhase,
          "ModelMonitor": MonitorPhase, "BatchPrediction": BatchPhase}  # fmt: skip


def yaml_blocks() -> list[dict[str, Any]]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)]


def health_scripts() -> dict[str, str]:
    (config_map,) = [b for b in yaml_blocks() if b.get("kind") == "ConfigMap"]
    assert config_map["metadata"] == {"name": "argocd-cm", "namespace": "argocd",
                                      "labels": {"app.kubernetes.io/part-of": "argocd"}}  # fmt: skip
    prefix = "resource.customizations.health.kubeloop.io_"
    return {
        key.removeprefix(prefix): value for key, value in config_map["data"].items() if key.startswith(prefix)
    }


@pytest.fixture(scope="module")
def lua51(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    target = tmp_path_factory.mktemp("lupa")
    pip_offline_first(Path(sys.executable), ["install", f"--target={target}"], ["lupa>=2.0"],
                      WHEELHOUSE / "lupa", target)  # fmt: skip
    sys.path.insert(0, str(target))
    try:
        from lupa import lua51 as module  # noqa: PLC0415 - installed by this fixture

        yield module
    finally:
        sys.path.remove(str(target))


@pytest.fixture(scope="module")
def health(lua51: Any) -> Callable[[str], Health]:
    scripts = health_scripts()

    def for_kind(kind: str) -> Health:
        def check(obj: dict[str, Any]) -> tuple[str, str]:
            lua = lua51.LuaRuntime(unpack_returned_tuples=True)
            lua.globals().obj = lua.table_from(obj, recursive=True)
            result = lua.execute(scripts[kind])
            return str(result["status"]), str(result["message"])

        return check

    return for_kind


def resource(generation: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "churn", "generation": generation}, "spec": {}}
    if status is not None:
        obj["status"] = status
    return obj


def test_there_is_one_health_check_per_kind() -> None:
    assert sorted(health_scripts()) == sorted(EXPECTED)
    assert "application.resourceTrackingMethod" in yaml_blocks()[0]["data"]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_health_follows_the_phase_and_quotes_the_summary_condition(
    kind: str, health: Callable[[str], Health]
) -> None:
    summary, table = EXPECTED[kind]
    assert set(table) == set(PHASES[kind]), "a phase without a documented health"
    check = health(kind)
    for phase, expected in table.items():
        condition = {"type": summary, "status": "True", "reason": "Because", "message": f"the {phase} detail"}
        other = {"type": "Other", "status": "True", "reason": "Noise", "message": "not this one"}
        status = {"observedGeneration": 2, "phase": str(phase), "conditions": [other, condition]}
        verdict, message = check(resource(2, status))
        assert verdict == expected, f"{kind} {phase}"
        assert message.startswith(str(phase)) and message.endswith(f"the {phase} detail"), message
        assert "not this one" not in message


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_health_waits_for_the_operator_to_observe_the_generation(
    kind: str, health: Callable[[str], Health]
) -> None:
    check = health(kind)
    assert check(resource(1)) == ("Progressing", "Waiting for the kubeloop operator")
    degraded = next(str(phase) for phase, verdict in EXPECTED[kind][1].items() if verdict == "Degraded")
    stale = {"observedGeneration": 1, "phase": degraded}
    verdict, message = check(resource(2, stale))
    assert verdict == "Progressing" and "generation 2" in message
    without_conditions = check(resource(2, {"observedGeneration": 2, "phase": stale["phase"]}))
    assert without_conditions == ("Degraded", stale["phase"])


def test_model_version_health_names_the_stage(health: Callable[[str], Health]) -> None:
    status = {"observedGeneration": 1, "phase": "Ready", "stage": "Rejected", "conditions": []}
    assert health("ModelVersion")(resource(1, status)) == ("Healthy", "Ready, stage Rejected")


def test_applications_are_well_formed_and_the_chart_accepts_their_values(tmp_path: Path) -> None:
    applications = [b for b in yaml_blocks() if b.get("kind") == "Application"]
    assert [a["metadata"]["name"] for a in applications] == ["kubeloop", "churn-models"]
    for app in applications:
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["metadata"]["namespace"] == "argocd"
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    platform = applications[0]["spec"]
    assert platform["source"]["path"] == "charts/kubeloop"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(platform["source"]["helm"]["valuesObject"]))
    helm("template", "kubeloop", str(CHART), f"--namespace={platform['destination']['namespace']}",
         f"--values={values}")  # fmt: skip
    labels = platform["syncPolicy"]["managedNamespaceMetadata"]["labels"]
    assert labels == {"pod-security.kubernetes.io/enforce": "restricted"}
