"""The whole loop, narrated step by step: the scenario behind `make demo` and the end-to-end tests.

It drives a running stack (the dev environment or the test fixtures) only from outside, as a
person would: kubectl apply of the examples, HTTP to the router, objects read back from the API.
The examples are applied as written except for their clocks (minutes instead of hours) and sizes,
so the loop fits in a few minutes on a laptop; each change is said out loud.
"""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from minio import Minio

from tests.datasets import churn_csv

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"
GROUP, VERSION = "kubeloop.io", "v1alpha1"
PLURALS = {"TrainingRun": "trainingruns", "ModelVersion": "modelversions",
           "ModelDeployment": "modeldeployments", "ModelMonitor": "modelmonitors"}  # fmt: skip
RUN, MODEL = "churn-2024-06-01", "churn"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """Where the stack is: the kubeconfig and the store."""

    kubeconfig: str
    s3_endpoint: str
    access_key: str
    secret_key: str
    bucket: str = "kubeloop"

    @classmethod
    def from_env(cls) -> Target:
        env = os.environ
        return cls(env["KUBECONFIG"], env["KUBELOOP_S3_ENDPOINT"], env["KUBELOOP_S3_ACCESS_KEY"],
                   env["KUBELOOP_S3_SECRET_KEY"], env.get("KUBELOOP_S3_BUCKET", "kubeloop"))  # fmt: skip


@dataclass
class Loop:
    target: Target
    namespace: str = "demo"
    say: Callable[[str], None] = print
    timings: list[tuple[str, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(config_file=self.target.kubeconfig)
        self.custom = client.CustomObjectsApi(self.api)

    # --- narration ---------------------------------------------------------------------------------

    def clock(self) -> str:
        elapsed = int(time.monotonic() - self.started)
        return f"{elapsed // 60:02d}:{elapsed % 60:02d}"

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.say(f"\n\033[1m[{self.clock()}] {title}\033[0m")
        began = time.monotonic()
        yield
        self.timings.append((title, time.monotonic() - began))

    def note(self, text: str) -> None:
        self.say(f"  [{self.clock()}] {text}")

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        env = {**os.environ, "KUBECONFIG": self.target.kubeconfig}
        done = subprocess.run(["kubectl", *args], input=stdin, env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def cli(self, *args: str) -> str:
        """The `kubeloop` command as a person runs it."""
        env = {**os.environ, "KUBECONFIG": self.target.kubeconfig, "PYTHONPATH": str(REPO / "operator")}
        done = subprocess.run([sys.executable, "-m", "kubeloop.cli", "-n", self.namespace, *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        return done.stdout.rstrip() if done.returncode == 0 else f"(kubeloop {args[0]} failed: {done.stderr})"

    def show(self) -> None:
        """The live view a person would keep open: `kubectl get kubeloop`."""
        for line in self.kubectl("get", "kubeloop", "-n", self.namespace).rstrip().splitlines():
            self.say(f"    {line}")

    # --- the cluster -------------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> Obj:
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURALS[kind], name)
        )

    def items(self, kind: str, selector: str = "") -> list[Obj]:
        found = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURALS[kind],
                                                          label_selector=selector)  # fmt: skip
        return list(found["items"])

    def wait(self, kind: str, name: str, done: Callable[[Obj], bool], timeout: float = 600) -> Obj:
        """Wait for `done(status)`, showing `kubectl get kubeloop` whenever a phase changes."""
        deadline, phases = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            try:
                status = self.get(kind, name).get("status") or {}
            except client.ApiException as error:
                if error.status != 404:
                    raise
                status = {}
            if done(status):
                self.show()
                return status
            now = " ".join(str((o.get("status") or {}).get("phase")) for k in PLURALS for o in self.items(k))
            if now != phases:
                phases = now
                self.show()
            time.sleep(2)
        raise TimeoutError(f"{kind} {name} did not get there in {timeout:.0f}s; last status: {status}")

    def apply(self, manifest: Obj) -> None:
        self.kubectl("apply", "-n", self.namespace, "-f", "-", stdin=yaml.safe_dump(manifest))

    def upload(self, key: str, data: bytes) -> str:
        endpoint = self.target.s3_endpoint.split("://", 1)
        store = Minio(
            endpoint[1], self.target.access_key, self.target.secret_key, secure=endpoint[0] == "https"
        )
        store.put_object(self.target.bucket, key, io.BytesIO(data), len(data), content_type="text/csv")
        return f"s3://{self.target.bucket}/{key}"

    def prepare(self) -> None:
        """The namespace and the store Secret its workloads reference (once per namespace)."""
        self.kubectl("create", "namespace", self.namespace)
        self.kubectl("create", "secret", "generic", "kubeloop-s3", "-n", self.namespace,
                     f"--from-literal=accessKey={self.target.access_key}",
                     f"--from-literal=secretKey={self.target.secret_key}")  # fmt: skip


def example(kind: str) -> Obj:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if body["kind"] == kind:
            return copy.deepcopy(dict(body))
    raise LookupError(kind)


def quick_training(run: Obj, dataset: str) -> Obj:
    """The example TrainingRun with a search sized for two cores."""
    spec = run["spec"]
    spec["dataset"]["uri"] = dataset
    spec["algorithm"]["search"].update(trials=6, parallelism=2, cvFolds=3)
    spec["resources"] = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
    spec["deadline"] = "20m"
    return run


def quick_deployment(mdep: Obj) -> Obj:
    """The example ModelDeployment tracking the newest version, with a rollout of seconds."""
    spec = mdep["spec"]
    spec.pop("version", None)
    spec.pop("autoscaling", None)
    spec.update(
        track={"policy": "Latest"}, replicas=1, resources={"requests": {"cpu": "100m", "memory": "256Mi"}}
    )
    rollout = spec["rollout"]
    rollout["shadow"] = {"percent": 100, "duration": "30s"}
    rollout["steps"] = [{"weight": 50, "duration": "30s"}]
    # A busy two-core machine jitters p99 more than a production node: loosen only the latency gate.
    rollout["analysis"].update(
        minRequests=100, maxLatencyRatio=10, minAgreement=0.8, maxProbabilityDelta=0.15
    )
    return mdep


def quick_monitor(mmon: Obj, newer_dataset: str) -> Obj:
    """The example ModelMonitor, checking every minute over the last three."""
    spec = mmon["spec"]
    spec.update(schedule="1m", window="3m", minSamples=200)
    spec["retrain"].update(cooldown="30m", maxPerDay=2)
    spec["retrain"]["trainingRun"]["datasetUri"] = newer_dataset
    spec["performance"].update(labelDelay="0s")
    return mmon


def dataset_csv(rows: int, *, seed: int, shift: float = 0.0, label_noise: float = 0.0) -> bytes:
    return churn_csv(rows, seed=seed, shift=shift, label_noise=label_noise)
