"""Invalid kubeloop manifests, each with the field and message the API server rejects it with.

Every case is one of the examples in manifests/examples/ with a few changes. The real
kube-apiserver must reject each (tests/cluster/test_crds.py). The pydantic models must reject them
too, with the very same message where the server's comes from one of our CEL rules
(tests/unit/api/test_cel_rules.py). Plain data: importable without a cluster or kubernetes.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubeloop.api.v1alpha1 import batchprediction as bp
from kubeloop.api.v1alpha1 import modeldeployment as mdep
from kubeloop.api.v1alpha1 import modelmonitor as mmon
from kubeloop.api.v1alpha1 import modelversion as mv
from kubeloop.api.v1alpha1 import trainingrun as tr
from kubeloop.api.v1alpha1.cel import CelRule
from kubeloop.api.v1alpha1.common import POSITIVE_DURATION

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "manifests" / "examples"
TR, MV, MDEP, MMON, BP = (
    "trainingrun-churn.yaml",
    "modelversion-import.yaml",
    "modeldeployment-churn.yaml",
    "modelmonitor-churn.yaml",
    "batchprediction-churn.yaml",
)
DELETE = object()  # as the value of a change: remove the field
Manifest = dict[str, Any]


def example(name: str) -> Manifest:
    manifest: Manifest = yaml.safe_load((EXAMPLES_DIR / name).read_text())
    return manifest


@dataclass(frozen=True)
class Invalid:
    """`example` with `changes` ({dotted path, list indices as numbers: new value or DELETE})."""

    name: str
    example: str
    changes: dict[str, Any]
    expected: str | CelRule  # a fragment of the server's message, or the CEL rule whose message it is
    at: str | None = ""  # the field the server names; "": the one changed field; None: no field
    server_only: str = ""  # why pydantic accepts it; empty: pydantic rejects it too

    @property
    def kind(self) -> str:
        kind: str = example(self.example)["kind"]
        return kind

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def rule(self) -> CelRule | None:
        return self.expected if isinstance(self.expected, CelRule) else None

    @property
    def message(self) -> str:
        return self.expected.message if isinstance(self.expected, CelRule) else self.expected

    @property
    def field(self) -> str | None:
        """The field as the server spells it: spec.rollout.steps[0].weight."""
        if self.at != "":
            return self.at
        [path] = self.changes
        return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path)

    def manifest(self) -> Manifest:
        manifest = example(self.example)
        for path, value in self.changes.items():
            *parents, last = path.split(".")
            target: Any = manifest
            for part in parents:
                target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
            key: Any = int(last) if isinstance(target, list) else last
            if value is DELETE:
                del target[key]
            else:
                target[key] = copy.deepcopy(value)
        return manifest


# Fragments of the server's own messages (k8s.io/apiextensions-apiserver schema validation).
REQUIRED, UNSUPPORTED, PATTERN = "Required value", "Unsupported value", "should match"
TYPE_STRING, TYPE_INTEGER, TYPE_NUMBER = (f"must be of type {t}" for t in ("string", "integer", "number"))
AT_LEAST_1 = "should be greater than or equal to 1"
AT_MOST_1 = "should be less than or equal to 1"
DNS_LABEL = "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"
DURATION = "should match '^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$'"
DUPLICATE = "Duplicate value"
NOT_A_SET = "list-type set/map uniqueness is checked by the API server only; pydantic lists allow duplicates"

SEARCH, SPACE, STEPS = "spec.algorithm.search", "spec.algorithm.search.space", "spec.rollout.steps"
RUN = "spec.retrain.trainingRun"
HOOK = "spec.notify.webhook"
SHA = "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e6f7"
BAD_SEARCH = {"space": {"C": {"values": [1, 10]}}, "trials": 2, "parallelism": 3}
BAD_TEMPLATE = {**example(TR)["spec"], "algorithm": {"estimator": "SVC", "search": BAD_SEARCH}}

INVALID: list[Invalid] = [
    # --- TrainingRun: schema -------------------------------------------------------------------
    Invalid("no-spec", TR, {"spec": DELETE}, REQUIRED),
    Invalid("no-dataset-uri", TR, {"spec.dataset.uri": DELETE}, REQUIRED),
    Invalid("model-not-dns", TR, {"spec.model": "Churn_Model"}, DNS_LABEL),
    Invalid("model-64-chars", TR, {"spec.model": "m" * 64}, "Too long: may not be more than 63 bytes"),
    Invalid("uri-http", TR, {"spec.dataset.uri": "http://x/d.csv"}, PATTERN),
    Invalid("format-json", TR, {"spec.dataset.format": "json"}, 'Unsupported value: "json"'),
    Invalid("unknown-estimator", TR, {"spec.algorithm.estimator": "XGBClassifier"}, UNSUPPORTED),
    Invalid("trials-a-word", TR, {f"{SEARCH}.trials": "many"}, TYPE_INTEGER),
    Invalid("trials-0", TR, {f"{SEARCH}.trials": 0}, AT_LEAST_1),
    Invalid("cv-folds-1", TR, {f"{SEARCH}.cvFolds": 1}, "should be greater than or equal to 2"),
    Invalid("test-fraction-1", TR, {"spec.split.testFraction": 1}, "should be less than 1"),
    Invalid("test-fraction-0", TR, {"spec.split.testFraction": 0}, "should be greater than 0"),
    Invalid("missing-fraction-2", TR, {"spec.dataset.validation.maxMissingFraction": 2}, AT_MOST_1),
    Invalid("cpu-lots", TR, {"spec.resources.requests.cpu": "lots"}, PATTERN),
    Invalid("deadline-in-words", TR, {"spec.deadline": "90 minutes"}, DURATION),
    Invalid("deadline-fractional", TR, {"spec.deadline": "1.5h"}, DURATION),
    Invalid("deadline-an-integer", TR, {"spec.deadline": 3600}, TYPE_STRING),
    Invalid("metric-twice", TR, {"spec.metrics": ["f1", "f1"]}, DUPLICATE, "spec.metrics[1]", NOT_A_SET),
    Invalid("typo-field", TR, {"spec.dataset.targets": "x"}, 'unknown field "spec.dataset.targets"', None),
    # --- TrainingRun: CEL ----------------------------------------------------------------------
    Invalid("name-57-chars", TR, {"metadata.name": "churn-" + "x" * 51}, tr.NAME_FITS_JOB_NAMES),
    Invalid("deadline-0h", TR, {"spec.deadline": "0h"}, POSITIVE_DURATION),
    Invalid(
        "target-in-features",
        TR,
        {"spec.dataset.features": ["tenure_months", "churned"]},
        tr.TARGET_NOT_A_FEATURE,
        "spec.dataset",
    ),
    Invalid(
        "range-min-above-max",
        TR,
        {"spec.dataset.validation.ranges.tenure_months": {"min": 10, "max": 1}},
        tr.RANGE_ORDERED,
        "spec.dataset.validation.ranges[tenure_months]",
    ),
    Invalid(
        "parallelism-above-trials", TR, {f"{SEARCH}.parallelism": 30}, tr.PARALLELISM_WITHIN_TRIALS, SEARCH
    ),
    Invalid("grid-with-distribution", TR, {f"{SEARCH}.strategy": "grid"}, tr.GRID_NEEDS_VALUES, SEARCH),
    Invalid(
        "distribution-without-high",
        TR,
        {f"{SPACE}.learning_rate": {"distribution": "uniform", "low": 0.1}},
        tr.DISTRIBUTION_BOUNDS,
        f"{SPACE}[learning_rate]",
    ),
    Invalid(
        "low-without-distribution",
        TR,
        {f"{SPACE}.max_depth.low": 1},
        tr.DISTRIBUTION_BOUNDS,
        f"{SPACE}[max_depth]",
    ),
    Invalid(
        "low-above-high",
        TR,
        {f"{SPACE}.learning_rate": {"distribution": "uniform", "low": 1, "high": 0.5}},
        tr.DISTRIBUTION_LOW_BELOW_HIGH,
        f"{SPACE}[learning_rate]",
    ),
    Invalid(
        "loguniform-from-0",
        TR,
        {f"{SPACE}.learning_rate.low": 0},
        tr.LOGUNIFORM_POSITIVE,
        f"{SPACE}[learning_rate]",
    ),
    Invalid(
        "regression-metric-for-classifier",
        TR,
        {f"{SEARCH}.metric": "rmse"},
        tr.SEARCH_METRIC_MATCHES_ESTIMATOR,
        "spec.algorithm",
    ),
    Invalid(
        "classification-metric-for-regressor",
        TR,
        {"spec.algorithm.estimator": "RandomForestRegressor", "spec.algorithm.params": {}},
        tr.SEARCH_METRIC_MATCHES_ESTIMATOR,
        "spec.algorithm",
    ),
    # --- ModelVersion --------------------------------------------------------------------------
    Invalid("version-0", MV, {"spec.version": 0, "metadata.name": "churn-v0"}, AT_LEAST_1, "spec.version"),
    Invalid("version-a-word", MV, {"spec.version": "seven"}, TYPE_INTEGER),
    Invalid("sha256-short", MV, {"spec.artifact.sha256": SHA[:12]}, "should be at least 64 chars long"),
    Invalid("sha256-uppercase", MV, {"spec.artifact.sha256": SHA.upper()}, "should match '^[a-f0-9]{64}$'"),
    Invalid("format-pickle", MV, {"spec.artifact.format": "pickle"}, 'supported values: "onnx"'),
    Invalid("metric-a-word", MV, {"spec.metrics.roc_auc": "high"}, TYPE_NUMBER),
    Invalid("no-inputs", MV, {"spec.signature.inputs": []}, "should have at least 1 items"),
    Invalid(
        "input-twice",
        MV,
        {"spec.signature.inputs.1.name": "tenure_months"},
        DUPLICATE,
        "spec.signature.inputs[1]",
        NOT_A_SET,
    ),
    Invalid("name-other-version", MV, {"metadata.name": "churn-v8"}, mv.NAME_IS_MODEL_AND_VERSION),
    Invalid("name-without-v", MV, {"metadata.name": "churn-7"}, mv.NAME_IS_MODEL_AND_VERSION),
    Invalid("name-other-model", MV, {"metadata.name": "attrition-v7"}, mv.NAME_IS_MODEL_AND_VERSION),
    Invalid(
        "primary-metric-unrecorded", MV, {"spec.primaryMetric": "mae"}, mv.PRIMARY_METRIC_RECORDED, "spec"
    ),
    # --- ModelDeployment -----------------------------------------------------------------------
    Invalid("name-starts-with-digit", MDEP, {"metadata.name": "9churn"}, mdep.NAME_IS_SERVICE_PREFIX),
    Invalid("name-51-chars", MDEP, {"metadata.name": "c" * 51}, mdep.NAME_IS_SERVICE_PREFIX),
    Invalid("version-and-track", MDEP, {"spec.track": {"policy": "Latest"}}, mdep.VERSION_XOR_TRACK, "spec"),
    Invalid("neither-version-nor-track", MDEP, {"spec.version": DELETE}, mdep.VERSION_XOR_TRACK, "spec"),
    Invalid(
        "best-metric-without-metric",
        MDEP,
        {"spec.version": DELETE, "spec.track": {"policy": "BestMetric"}},
        mdep.BEST_METRIC_NEEDS_METRIC,
        "spec.track",
    ),
    Invalid(
        "track-policy-oldest",
        MDEP,
        {"spec.version": DELETE, "spec.track": {"policy": "Oldest"}},
        UNSUPPORTED,
        "spec.track.policy",
    ),
    Invalid("replicas-and-autoscaling", MDEP, {"spec.replicas": 3}, mdep.REPLICAS_XOR_AUTOSCALING, "spec"),
    Invalid(
        "replicas-negative",
        MDEP,
        {"spec.autoscaling": DELETE, "spec.replicas": -1},
        "should be greater than or equal to 0",
        "spec.replicas",
    ),
    Invalid(
        "min-above-max-replicas",
        MDEP,
        {"spec.autoscaling.minReplicas": 8},
        mdep.AUTOSCALING_BOUNDS,
        "spec.autoscaling",
    ),
    Invalid(
        "strategy-blue-green", MDEP, {"spec.rollout.strategy": "BlueGreen"}, 'Unsupported value: "BlueGreen"'
    ),
    Invalid("weights-repeat", MDEP, {f"{STEPS}.1.weight": 10}, mdep.STEPS_INCREASING, STEPS),
    Invalid("weights-decrease", MDEP, {f"{STEPS}.2.weight": 20}, mdep.STEPS_INCREASING, STEPS),
    Invalid("weight-0", MDEP, {f"{STEPS}.0.weight": 0}, AT_LEAST_1),
    Invalid("weight-101", MDEP, {f"{STEPS}.2.weight": 101}, "should be less than or equal to 100"),
    Invalid(
        "eleven-steps", MDEP, {STEPS: [{"weight": w} for w in range(5, 60, 5)]}, "must have at most 10 items"
    ),
    Invalid("canary-without-steps", MDEP, {STEPS: []}, mdep.CANARY_NEEDS_STEPS, "spec.rollout"),
    Invalid("step-duration-0m", MDEP, {f"{STEPS}.0.duration": "0m"}, POSITIVE_DURATION),
    Invalid("shadow-percent-0", MDEP, {"spec.rollout.shadow.percent": 0}, AT_LEAST_1),
    Invalid("error-rate-150-percent", MDEP, {"spec.rollout.analysis.maxErrorRate": 1.5}, AT_MOST_1),
    Invalid(
        "sample-rate-negative",
        MDEP,
        {"spec.logging.sampleRate": -0.1},
        "should be greater than or equal to 0",
    ),
    # --- ModelMonitor --------------------------------------------------------------------------
    Invalid("no-deployment", MMON, {"spec.deployment": DELETE}, REQUIRED),
    Invalid("schedule-an-integer", MMON, {"spec.schedule": 60}, TYPE_STRING),
    Invalid("schedule-0m", MMON, {"spec.schedule": "0m"}, POSITIVE_DURATION),
    Invalid("window-in-words", MMON, {"spec.window": "1 day"}, DURATION),
    Invalid("drift-method-kl", MMON, {"spec.drift.method": "kl"}, 'Unsupported value: "kl"'),
    Invalid("threshold-0", MMON, {"spec.drift.threshold": 0}, "should be greater than 0"),
    Invalid("max-per-day-25", MMON, {"spec.retrain.maxPerDay": 25}, "should be less than or equal to 24"),
    Invalid("cooldown-0s", MMON, {"spec.retrain.cooldown": "0s"}, POSITIVE_DURATION),
    Invalid("retrain-without-run", MMON, {RUN: DELETE}, mmon.RETRAIN_NEEDS_TRAINING_RUN, "spec.retrain"),
    Invalid(
        "run-name-and-template",
        MMON,
        {f"{RUN}.template": example(TR)["spec"]},
        mmon.TRAINING_RUN_NAME_XOR_TEMPLATE,
        RUN,
    ),
    Invalid(
        "run-without-name-or-template",
        MMON,
        {f"{RUN}.name": DELETE},
        mmon.TRAINING_RUN_NAME_XOR_TEMPLATE,
        RUN,
    ),
    Invalid(
        "template-parallelism-above-trials",
        MMON,
        {f"{RUN}.name": DELETE, f"{RUN}.template": BAD_TEMPLATE},
        tr.PARALLELISM_WITHIN_TRIALS,
        f"{RUN}.template.algorithm.search",
    ),
    # --- BatchPrediction -----------------------------------------------------------------------
    Invalid("no-input", BP, {"spec.input": DELETE}, REQUIRED),
    Invalid("input-uri-http", BP, {"spec.input.uri": "https://x/customers.csv"}, PATTERN),
    Invalid("output-format-json", BP, {"spec.output.format": "json"}, 'Unsupported value: "json"'),
    Invalid("schedule-in-words", BP, {"spec.schedule": "every night"}, PATTERN),
    Invalid("schedule-six-fields", BP, {"spec.schedule": "0 0 2 * * *"}, PATTERN),
    Invalid("time-zone-with-space", BP, {"spec.timeZone": "Europe Paris"}, PATTERN),
    Invalid("shards-0", BP, {"spec.shards": 0}, AT_LEAST_1),
    Invalid("shards-101", BP, {"spec.shards": 101}, "should be less than or equal to 100"),
    Invalid("chunk-rows-10", BP, {"spec.chunkRows": 10}, "should be greater than or equal to 100"),
    Invalid("reject-fraction-2", BP, {"spec.maxRejectFraction": 2}, AT_MOST_1),
    Invalid(
        "email-not-an-address",
        BP,
        {"spec.notify.email.to": ["retention"]},
        PATTERN,
        "spec.notify.email.to[0]",
    ),
    Invalid("notify-on-nothing", BP, {"spec.notify.on": []}, "should have at least 1 items"),
    Invalid("history-limit-0", BP, {"spec.historyLimit": 0}, AT_LEAST_1),
    Invalid("deadline-0m", BP, {"spec.deadline": "0m"}, POSITIVE_DURATION),
    Invalid("name-41-chars", BP, {"metadata.name": "churn-" + "n" * 35}, bp.NAME_FITS_JOB_NAMES),
    Invalid(
        "version-and-deployment", BP, {"spec.fromDeployment": "churn"}, bp.VERSION_XOR_DEPLOYMENT, "spec"
    ),
    Invalid(
        "neither-version-nor-deployment", BP, {"spec.version": DELETE}, bp.VERSION_XOR_DEPLOYMENT, "spec"
    ),
    Invalid(
        "output-inside-input",
        BP,
        {"spec.output.uri": "s3://kubeloop/datasets/churn/customers/scored/"},
        bp.OUTPUT_OUTSIDE_INPUT,
        "spec",
    ),
    Invalid(
        "input-inside-output",
        BP,
        {"spec.output.uri": "s3://kubeloop/datasets/churn"},
        bp.OUTPUT_OUTSIDE_INPUT,
        "spec",
    ),
    Invalid("parallelism-above-shards", BP, {"spec.parallelism": 5}, bp.PARALLELISM_WITHIN_SHARDS, "spec"),
    Invalid(
        "suspend-one-off",
        BP,
        {"spec.schedule": DELETE, "spec.timeZone": DELETE, "spec.suspend": True},
        bp.SUSPEND_NEEDS_SCHEDULE,
        "spec",
    ),
    Invalid("time-zone-one-off", BP, {"spec.schedule": DELETE}, bp.TIME_ZONE_NEEDS_SCHEDULE, "spec"),
    Invalid("notify-nobody", BP, {"spec.notify": {"on": ["Failed"]}}, bp.NOTIFY_HAS_CHANNEL, "spec.notify"),
    Invalid(
        "webhook-url-and-secret",
        BP,
        {f"{HOOK}.url": "https://hooks.example.com/churn"},
        bp.WEBHOOK_URL_XOR_SECRET,
        HOOK,
    ),
    Invalid("webhook-without-url", BP, {f"{HOOK}.urlSecret": DELETE}, bp.WEBHOOK_URL_XOR_SECRET, HOOK),
]
