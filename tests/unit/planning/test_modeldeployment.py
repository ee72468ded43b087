"""ModelDeployment planning: a rollout driven reconcile by reconcile, from status alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeloop.api.v1alpha1 import ModelDeploymentSpec
from kubeloop.contracts.routing import ROUTING_KEY, ComparisonStats, RouterStats, SideStats, bucket_of
from kubeloop.planning.modeldeployment import DeploymentPlan, Observed, VersionView, plan_deployment
from kubeloop.planning.modeldeployment_children import ServedVersion
from kubeloop.planning.rollout import APPROVE_ANNOTATION, APPROVED_BY_ANNOTATION, PROMOTE_ANNOTATION, epoch
from tests.unit.planning.test_trainingrun import SETTINGS

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Obj = dict[str, Any]


def mdep(generation: int = 1, **spec: Any) -> Obj:
    base = {"model": "churn", "version": 1, "rollout": {
        "strategy": "Canary", "steps": [{"weight": 10, "duration": "1m"}, {"weight": 50, "duration": "1m"}],
        "analysis": {"minRequests": 20, "minAgreement": 0.9, "maxProbabilityDelta": 0.2}}}  # fmt: skip
    return {"apiVersion": "kubeloop.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "churn", "namespace": "ns", "uid": "u", "generation": generation},
            "spec": {**base, **spec}}  # fmt: skip


def versions(*numbers: int, stage: dict[int, str] | None = None, metrics: dict[int, float] | None = None
             ) -> dict[int, VersionView]:  # fmt: skip
    return {n: VersionView(n, True, (stage or {}).get(n), {"accuracy": (metrics or {}).get(n, 0.8)},
                           ServedVersion(n, f"s3://b/runs/{n}/model.onnx", f"{n:064x}", f"s3://b/runs/{n}/model.json"))
            for n in numbers}  # fmt: skip


def stats(epoch_name: str, requests: int = 50, *, errors: int = 0, agreed: float = 1.0, delta: float = 0.01,
          candidate_ms: float = 1.0) -> RouterStats:  # fmt: skip
    def side(n: int, ms: float, failed: int = 0) -> SideStats:
        buckets = [0] * 61
        buckets[bucket_of(ms)] = n
        return SideStats(requests=n, errors=failed, latencyBuckets=buckets)

    compared = ComparisonStats(requests=requests, rows=requests, agreed=round(agreed * requests),
                               probabilityDeltaSum=delta * requests, probabilityRows=requests)  # fmt: skip
    candidate = side(requests, candidate_ms, errors)
    return RouterStats(
        epoch=epoch_name, stable=side(requests * 4, 1.0), candidate=candidate, comparison=compared
    )


class Driver:
    """Feeds each plan's status into the next reconcile, as the API server would."""

    def __init__(self, resource: Obj, known: dict[int, VersionView]) -> None:
        self.resource, self.versions, self.now = resource, known, T0
        self.ready: dict[int, int] = {}
        self.stages: list[tuple[int, str]] = []
        self.events: list[str] = []

    def tick(self, seconds: float = 0, stats: RouterStats | None = None,
             annotations: dict[str, str] | None = None) -> DeploymentPlan:  # fmt: skip
        self.now += timedelta(seconds=seconds)
        spec = ModelDeploymentSpec.model_validate(self.resource["spec"])
        observed = Observed(self.versions, self.ready, frozenset(self.ready), 1, stats, annotations or {})
        plan = plan_deployment(self.resource, spec, observed, SETTINGS, self.now)
        self.resource["status"] = {k: v for k, v in plan.status.items() if v is not None}
        for change in plan.stages:
            self.stages.append((change.version, change.stage))
            view = self.versions[change.version]
            self.versions[change.version] = VersionView(view.number, view.ready, change.stage, view.metrics,
                                                        view.served)  # fmt: skip
        self.events += [e.reason for e in plan.events]
        for number in plan.delete:
            self.ready.pop(number, None)
        return plan

    @property
    def status(self) -> Obj:
        return dict(self.resource["status"])

    def epoch(self) -> str:
        return epoch(self.status)

    def serving_v1(self) -> None:
        self.ready[1] = 1
        self.tick()
        assert self.status["phase"] == "Available"

    def roll_out(self, version: int) -> None:
        self.resource["spec"]["version"] = version
        self.resource["metadata"]["generation"] += 1
        self.tick()
        self.ready[version] = 1


def table(plan: DeploymentPlan) -> Obj:
    (config_map,) = [c for c in plan.apply if c["kind"] == "ConfigMap"]
    return dict(json.loads(config_map["data"][ROUTING_KEY]))


def test_first_version_is_served_directly_and_becomes_production_when_ready() -> None:
    drive = Driver(mdep(), versions(1))
    plan = drive.tick()
    assert drive.status["phase"] == "Progressing" and drive.status["stable"] == {"version": 1, "ready": 0}
    kinds = sorted(f"{c['kind']}/{c['metadata']['name']}" for c in plan.apply)
    assert kinds == ["ConfigMap/churn-routing", "Deployment/churn", "Deployment/churn-v1",
                     "Role/churn-router", "RoleBinding/churn-router", "Service/churn", "Service/churn-v1",
                     "ServiceAccount/churn-router"]  # fmt: skip
    assert table(plan)["mode"] == "StableOnly" and table(plan)["stable"]["service"] == "churn-v1"
    assert drive.stages == []
    drive.serving_v1()
    assert drive.stages == [(1, "Production")]
    assert drive.status["endpoint"] == "http://churn.ns.svc"
    available = {c["type"]: c["status"] for c in drive.status["conditions"]}
    assert available == {"Available": "True", "Progressing": "False", "Degraded": "False"}


def test_missing_version_is_reported_and_nothing_is_created() -> None:
    drive = Driver(mdep(version=3), versions(1))
    plan = drive.tick()
    assert plan.apply == [] and drive.status["phase"] == "Progressing"
    degraded = next(c for c in drive.status["conditions"] if c["type"] == "Degraded")
    assert "churn-v3 does not exist" in degraded["message"]


def test_canary_walks_its_steps_with_passing_analysis_and_promotes() -> None:
    drive = Driver(mdep(), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    assert drive.stages[-1] == (2, "Staging") and drive.status["candidate"]["weight"] == 0
    plan = drive.tick(1)
    assert (
        drive.status["phase"] == "Canary" and table(plan)["weight"] == 10 and table(plan)["mode"] == "Canary"
    )
    first = drive.epoch()
    drive.tick(30, stats(first))  # good figures, but the step is not over
    assert drive.status["candidate"]["step"] == 0 and drive.status["comparison"]["agreement"] == 1.0
    plan = drive.tick(31, stats(first))
    assert drive.status["candidate"]["step"] == 1 and table(plan)["weight"] == 50 and drive.epoch() != first
    plan = drive.tick(61, stats(drive.epoch()))
    assert drive.status["phase"] == "Available" and drive.status["stable"]["version"] == 2
    assert drive.stages[-2:] == [(1, "Archived"), (2, "Production")]
    assert drive.status["history"][-1]["outcome"] == "Promoted"
    assert plan.delete == [1] and table(plan) == {**table(plan), "mode": "StableOnly", "epoch": "v2"}
    assert {"RolloutStarted", "Canary", "StepAdvanced", "Promoted"} <= set(drive.events)


def test_step_without_enough_requests_waits_instead_of_deciding() -> None:
    drive = Driver(mdep(), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    drive.tick(1)
    drive.tick(120, stats(drive.epoch(), requests=5))
    assert drive.status["candidate"]["step"] == 0 and drive.status["phase"] == "Canary"
    progressing = next(c for c in drive.status["conditions"] if c["type"] == "Progressing")
    assert "5 of 20 candidate requests" in progressing["message"]


@pytest.mark.parametrize(("figures", "reason"), [
    ({"agreed": 0.5}, "AgreementTooLow"),
    ({"errors": 10}, "ErrorRateExceeded"),
    ({"delta": 0.5}, "ProbabilityDeltaExceeded"),
    ({"candidate_ms": 30.0}, "LatencyRatioExceeded"),
])  # fmt: skip
def test_failing_gate_rolls_back_at_once_and_rejects_the_version(figures: Obj, reason: str) -> None:
    drive = Driver(mdep(), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    drive.tick(1)
    plan = drive.tick(5, stats(drive.epoch(), **figures))  # well before the end of the step
    assert drive.status["phase"] == "RolledBack" and "candidate" not in drive.status
    assert drive.status["history"][-1]["outcome"] == "RolledBack"
    assert drive.status["history"][-1]["reason"].startswith(reason)
    assert drive.stages[-1] == (2, "Rejected") and drive.status["stable"]["version"] == 1
    assert plan.delete == [2] and table(plan)["mode"] == "StableOnly"
    drive.tick(10)  # the pinned version is not retried until the spec changes
    assert "candidate" not in drive.status and drive.status["phase"] == "RolledBack"


def test_tracking_latest_skips_rejected_versions() -> None:
    drive = Driver(mdep(version=None, track={"policy": "Latest"}), versions(1, 2, 3, stage={3: "Rejected"}))
    drive.tick()
    assert drive.status["stable"]["version"] == 2


def test_best_metric_picks_the_best_score() -> None:
    known = versions(1, 2, 3, metrics={1: 0.9, 2: 0.7, 3: 0.8})
    drive = Driver(mdep(version=None, track={"policy": "BestMetric", "metric": "accuracy"}), known)
    drive.tick()
    assert drive.status["stable"]["version"] == 1


def test_shadow_then_canary_copies_first_then_shifts_weight() -> None:
    rollout = {"strategy": "ShadowThenCanary", "shadow": {"percent": 40, "duration": "1m"},
               "steps": [{"weight": 25, "duration": "1m"}], "analysis": {"minRequests": 20}}  # fmt: skip
    drive = Driver(mdep(rollout=rollout), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    plan = drive.tick(1)
    assert drive.status["phase"] == "Shadowing"
    assert (
        table(plan)["mode"] == "Shadow" and table(plan)["shadowPercent"] == 40 and table(plan)["weight"] == 0
    )
    plan = drive.tick(61, stats(drive.epoch()))
    assert drive.status["phase"] == "Canary" and table(plan)["weight"] == 25
    drive.tick(61, stats(drive.epoch()))
    assert drive.status["stable"]["version"] == 2


def test_approval_is_awaited_then_recorded() -> None:
    rollout = {"strategy": "Shadow", "shadow": {"duration": "1m"}, "requireApproval": True,
               "analysis": {"minRequests": 20}}  # fmt: skip
    drive = Driver(mdep(rollout=rollout), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    drive.tick(1)
    drive.tick(61, stats(drive.epoch()))
    assert drive.status["phase"] == "AwaitingApproval"
    drive.tick(600, stats(drive.epoch()))
    assert drive.status["phase"] == "AwaitingApproval"
    drive.tick(1, stats(drive.epoch()), {APPROVE_ANNOTATION: "2", APPROVED_BY_ANNOTATION: "ana"})
    assert drive.status["stable"]["version"] == 2 and drive.status["history"][-1]["approvedBy"] == "ana"


def test_abort_rolls_back_and_a_spec_change_retries() -> None:
    drive = Driver(mdep(), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    drive.tick(1)
    drive.resource["spec"]["rollout"]["abort"] = True
    drive.resource["metadata"]["generation"] += 1
    drive.tick(1)
    assert drive.status["history"][-1]["outcome"] == "Aborted" and drive.stages[-1] == (2, "Candidate")
    drive.tick(1)
    assert "candidate" not in drive.status
    drive.resource["spec"]["rollout"]["abort"] = False
    drive.resource["metadata"]["generation"] += 1
    drive.tick(1)
    assert drive.status["candidate"]["version"] == 2


def test_a_restarted_operator_continues_from_status_alone() -> None:
    drive = Driver(mdep(), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    drive.tick(1)
    drive.tick(61, stats(drive.epoch()))
    again = Driver(json.loads(json.dumps(drive.resource)), drive.versions)  # a fresh process, same status
    again.ready, again.now = dict(drive.ready), drive.now
    plan = again.tick(1, stats(drive.epoch()))
    assert again.status["candidate"]["step"] == 1 and table(plan)["epoch"] == drive.epoch()


def test_servers_are_restricted_and_only_routers_get_an_api_token() -> None:
    drive = Driver(mdep(autoscaling={"minReplicas": 2, "maxReplicas": 4}), versions(1))
    plan = drive.tick()
    by_name = {(c["kind"], c["metadata"]["name"]): c for c in plan.apply}
    server = by_name["Deployment", "churn-v1"]
    assert "replicas" not in server["spec"]  # the HPA owns it
    pod = server["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    context = pod["containers"][0]["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["capabilities"] == {"drop": ["ALL"]}
    assert by_name["HorizontalPodAutoscaler", "churn-v1"]["spec"]["minReplicas"] == 2
    assert ("PodDisruptionBudget", "churn-v1") in by_name and ("PodDisruptionBudget", "churn") in by_name
    router = by_name["Deployment", "churn"]["spec"]["template"]["spec"]
    assert router["automountServiceAccountToken"] is True and router["serviceAccountName"] == "churn-router"
    verbs = {verb for rule in by_name["Role", "churn-router"]["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert labels["kubeloop.io/model"] == "churn" and labels["kubeloop.io/version"] == "1"
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == "u" for c in plan.apply)


def test_promote_on_request_skips_the_remaining_steps() -> None:
    drive = Driver(mdep(), versions(1, 2))
    drive.serving_v1()
    drive.roll_out(2)
    drive.tick(1)
    drive.tick(1, stats(drive.epoch()), {PROMOTE_ANNOTATION: "2", APPROVED_BY_ANNOTATION: "ana"})
    record = drive.status["history"][-1]
    assert (record["outcome"], record["reason"], record["approvedBy"]) == (
        "Promoted",
        "PromotedOnRequest",
        "ana",
    )
    assert drive.stages[-2:] == [(1, "Archived"), (2, "Production")]


def test_direct_replaces_the_stable_version_once_the_new_pods_are_ready() -> None:
    drive = Driver(mdep(rollout={"strategy": "Direct"}), versions(1, 2))
    drive.serving_v1()
    drive.resource["spec"]["version"] = 2
    drive.tick()
    assert drive.status["candidate"]["version"] == 2 and drive.status["stable"]["version"] == 1
    drive.ready[2] = 1
    plan = drive.tick(1)
    assert drive.status["stable"]["version"] == 2 and drive.status["history"][-1]["reason"] == "Direct"
    assert table(plan)["stable"]["version"] == 2 and plan.delete == [1]
