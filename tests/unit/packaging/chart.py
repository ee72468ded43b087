"""Rendering the chart with the real helm binary (the test binaries' helm v4)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tests.infra.testbin import binaries
from tests.unit.packaging.images import REPO

CHART = REPO / "charts" / "kubeloop"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
Obj = dict[str, Any]

# What the operator needs today, exactly (the rules of the hand-written manifest it replaced).
ALL_BUT_UPDATE = ["get", "list", "watch", "create", "patch", "delete"]
NAMESPACED_RULES: list[Obj] = [
    {"apiGroups": ["kubeloop.io"],
     "resources": ["trainingruns", "modelversions", "modeldeployments", "modelmonitors", "batchpredictions"],
     "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["kubeloop.io"],
     "resources": ["trainingruns/status", "modelversions/status", "modeldeployments/status",
                   "modelmonitors/status", "batchpredictions/status"],
     "verbs": ["get", "patch"]},
    {"apiGroups": ["kubeloop.io"], "resources": ["modelversions", "trainingruns"], "verbs": ["create"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "create"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ALL_BUT_UPDATE},
    {"apiGroups": [""], "resources": ["services"], "verbs": ALL_BUT_UPDATE},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"],
     "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
     "verbs": ["get", "list", "create", "patch", "delete"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
     "verbs": ["get", "create", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]  # fmt: skip
CLUSTER_RULES: list[Obj] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    exe = str(binaries().require("helm").helm)
    result = subprocess.run([exe, *args], capture_output=True, text=True, check=False, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def template_args(values: Iterable[Path] = (), sets: Iterable[str] = (), release: str = "kubeloop",
                  namespace: str = "kubeloop-system") -> list[str]:  # fmt: skip
    args = ["template", release, str(CHART), f"--namespace={namespace}"]
    args += [f"--values={v}" for v in values]
    args += [f"--set={s}" for s in sets]
    return args


def render_text(values: Iterable[Path] = (), sets: Iterable[str] = (), release: str = "kubeloop",
                namespace: str = "kubeloop-system") -> str:  # fmt: skip
    return helm(*template_args(values, sets, release, namespace)).stdout


def render(values: Iterable[Path] = (), sets: Iterable[str] = (), release: str = "kubeloop",
           namespace: str = "kubeloop-system") -> list[Obj]:  # fmt: skip
    return [doc for doc in yaml.safe_load_all(render_text(values, sets, release, namespace)) if doc]


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    (found,) = find(objects, kind, name)
    return found
