"""The two stories the loop must tell: a drift-triggered retrain promoted on its own, and a worse
retrain rejected by the rollout while the monitor holds back for its cooldown."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from tests.e2e.loop import (
    MODEL,
    RUN,
    Loop,
    dataset_csv,
    example,
    quick_deployment,
    quick_monitor,
    quick_training,
)
from tests.e2e.traffic import Traffic

Obj = dict[str, Any]
ROWS = 6000


@dataclass
class Outcome:
    """What the scenario saw, for the summary and the test's assertions."""

    traffic: Traffic | None = None
    retrain: str = ""
    deployment: Obj = field(default_factory=dict)
    monitor: Obj = field(default_factory=dict)
    versions: dict[str, Obj] = field(default_factory=dict)


def router_url(loop: Loop) -> str:
    """A ready router pod, by pod IP: the host reaches the pod range, not Service addresses (only pods do)."""
    discovery = client.DiscoveryV1Api(loop.api)
    for _ in range(60):
        slices = discovery.list_namespaced_endpoint_slice(
            loop.namespace, label_selector="kubernetes.io/service-name=churn"
        )
        ready = [
            a for s in slices.items for e in s.endpoints or [] if e.conditions.ready for a in e.addresses
        ]
        if ready:
            return f"http://{ready[0]}:8080"
        time.sleep(2)
    raise TimeoutError("no ready router pod for the Service churn")


def train_first_version(loop: Loop) -> None:
    with loop.stage("Upload the customer dataset (6000 rows, numeric and categorical) and train churn-v1"):
        dataset = loop.upload(f"datasets/{loop.namespace}/churn/v1.csv", dataset_csv(ROWS, seed=7))
        loop.note(f"dataset at {dataset}; TrainingRun {RUN}: data validation, then a random search over pods")
        loop.apply(quick_training(example("TrainingRun"), dataset))
        status = loop.wait("TrainingRun", RUN, lambda s: s.get("phase") in ("Succeeded", "Failed"))
        assert status["phase"] == "Succeeded", status
        trials = status["trials"]
        loop.note(f"best of {trials['total']} trials: {trials['best']}; metrics {status['metrics']}")
    with loop.stage("churn-v1 registered; the operator validates it (digest, onnxruntime, golden rows)"):
        version = loop.wait("ModelVersion", f"{MODEL}-v1", lambda s: s.get("phase") in ("Ready", "Failed"))
        assert version["phase"] == "Ready", version


def deploy_and_serve(loop: Loop, outcome: Outcome) -> None:
    with loop.stage("Deploy churn (tracks the newest validated version) behind the kubeloop router"):
        loop.apply(quick_deployment(example("ModelDeployment")))
        loop.wait("ModelDeployment", MODEL, lambda s: s.get("phase") == "Available")
    with loop.stage("Steady traffic through the router, with feedback on half the customers"):
        outcome.traffic = Traffic(router_url(loop), MODEL).start()
        time.sleep(5)
        loop.note(outcome.traffic.summary())


def watch_healthy(loop: Loop, newer: str) -> None:
    with loop.stage("Monitor churn every minute: drift (PSI) and live ROC AUC from feedback"):
        loop.apply(quick_monitor(example("ModelMonitor"), newer))
        status = loop.wait("ModelMonitor", MODEL, lambda s: s.get("phase") == "Healthy")
        loop.note(f"Healthy; top scores {status.get('features', [])[:3]}")


def shift_and_retrain(loop: Loop, outcome: Outcome) -> None:
    assert outcome.traffic is not None
    with loop.stage("The customer population shifts (longer tenure, higher charges, more fibre)"):
        outcome.traffic.set_shift(1.0)
        status = loop.wait("ModelMonitor", MODEL, lambda s: bool(s.get("lastRetrain")))
        outcome.retrain = status["lastRetrain"]["trainingRun"]["name"]
        loop.note(
            f"Drifting on {status.get('driftedFeatures')}; retrain TrainingRun {outcome.retrain} created"
        )
    with loop.stage(f"{outcome.retrain} trains on the newer dataset; churn-v2 is registered and validated"):
        run = loop.wait("TrainingRun", outcome.retrain, lambda s: s.get("phase") in ("Succeeded", "Failed"))
        assert run["phase"] == "Succeeded", run
        version = loop.wait("ModelVersion", f"{MODEL}-v2", lambda s: s.get("phase") in ("Ready", "Failed"))
        assert version["phase"] == "Ready", version


def roll_out(loop: Loop, outcome: Outcome, expect: str) -> None:
    """The deployment picks churn-v2 up by itself: shadow, canary, then promotion or rollback."""
    with loop.stage("The deployment picks churn-v2 up (it tracks Latest) and starts its pods"):
        loop.wait("ModelDeployment", MODEL, lambda s: s.get("phase") != "Available" or bool(s.get("history")))
        loop.wait("ModelDeployment", MODEL, lambda s: s.get("phase") not in ("Available", "Progressing"))
    with loop.stage("Shadow: every request answered by v1, copied to v2 and compared"):
        loop.wait("ModelDeployment", MODEL, lambda s: s.get("phase") != "Shadowing")
    with loop.stage("Canary: v2 answers half the requests while the comparison continues"):
        status = loop.wait(
            "ModelDeployment", MODEL, lambda s: not s.get("candidate") and bool(s.get("history"))
        )
        outcome.deployment = status
        record = status["history"][-1]
        loop.note(f"outcome {record['outcome']}: {record['reason']}")
        assert record["outcome"] == expect, record
    outcome.versions = {v["metadata"]["name"]: v for v in loop.items("ModelVersion")}
    outcome.monitor = loop.get("ModelMonitor", MODEL).get("status") or {}


def summary(loop: Loop, outcome: Outcome) -> None:
    loop.say("\n\033[1mkubeloop status churn\033[0m")
    loop.say(loop.cli("status", MODEL))
    loop.say("\n\033[1mkubeloop report churn\033[0m")
    loop.say(loop.cli("report", MODEL))
    loop.say("\n\033[1mWhat happened\033[0m")
    figures = outcome.deployment.get("comparison") or {}
    loop.say(f"  comparison (last step): {figures}")
    for name, version in sorted(outcome.versions.items()):
        history = " -> ".join(h["stage"] for h in version["status"].get("stageHistory") or [])
        loop.say(f"  {name}: {history}")
    loop.say(f"  drift report: {outcome.monitor.get('reportUri')}")
    for run in loop.items("TrainingRun"):
        artifact = ((run.get("status") or {}).get("artifact") or {}).get("uri", "")
        loop.say(f"  training report of {run['metadata']['name']}: {artifact.rsplit('/', 1)[0]}/report.html")
    loop.say(f"  traffic: {outcome.traffic.summary() if outcome.traffic else '-'}")
    loop.say("\n\033[1mTime per stage\033[0m")
    for title, seconds in loop.timings:
        loop.say(f"  {seconds:6.0f} s  {title}")
    loop.say(f"  total {loop.clock()}")


def promoted_retrain(loop: Loop) -> Outcome:
    """Train, serve, watch, drift, retrain, shadow, canary, promote."""
    outcome = Outcome()
    loop.prepare()
    train_first_version(loop)
    newer = loop.upload(f"datasets/{loop.namespace}/churn/latest.csv", dataset_csv(ROWS, seed=8, shift=1.0))
    deploy_and_serve(loop, outcome)
    watch_healthy(loop, newer)
    shift_and_retrain(loop, outcome)
    roll_out(loop, outcome, "Promoted")
    return outcome


def rejected_retrain(loop: Loop) -> Outcome:
    """The same story with corrupted labels in the newer data: v2 is rejected and v1 keeps serving."""
    outcome = Outcome()
    loop.prepare()
    train_first_version(loop)
    newer = loop.upload(
        f"datasets/{loop.namespace}/churn/latest.csv", dataset_csv(ROWS, seed=8, shift=1.0, label_noise=0.5)
    )
    deploy_and_serve(loop, outcome)
    watch_healthy(loop, newer)
    shift_and_retrain(loop, outcome)
    roll_out(loop, outcome, "RolledBack")
    return outcome
