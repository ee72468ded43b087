"""manifests/ is the chart rendered: the kustomize base equals `helm template` with the defaults, the
dev overlay equals it with the bundled MinIO, and the generated files are up to date."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from manifests import generate
from tests.infra.testbin import binaries
from tests.unit.packaging.chart import Obj, render
from tests.unit.packaging.images import REPO


def kustomize(directory: Path) -> list[Obj]:
    kubectl = str(binaries().require("kubectl").kubectl)
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_key(objects: list[Obj]) -> dict[tuple[str, str, str, str], Obj]:
    keyed = {generate.key(o): o for o in objects}
    assert len(keyed) == len(objects), Counter(generate.key(o) for o in objects).most_common(3)
    return keyed


def test_generated_files_are_up_to_date() -> None:
    stale = generate.stale(generate.crd_templates()) or generate.stale(generate.expected())
    assert not stale, "run `make manifests`:\n" + "".join(stale)[:6000]


@pytest.mark.parametrize(("overlay", "sets"), [
    ("base", generate.BASE_VALUES),
    ("overlays/dev", generate.DEV_VALUES),
], ids=["base", "dev"])  # fmt: skip
def test_kustomize_output_equals_the_chart(overlay: str, sets: tuple[str, ...]) -> None:
    built = by_key(kustomize(REPO / "manifests" / overlay))
    chart = by_key(render(sets=sets))
    assert sorted(built) == sorted(chart)
    for key, obj in chart.items():
        assert built[key] == obj, f"{key} differs between kustomize and helm template"


def test_base_brings_a_restricted_namespace_and_no_secret() -> None:
    objects = kustomize(REPO / "manifests" / "base")
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["name"] == "kubeloop-system"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]} == {
        "kubeloop-system"
    }
