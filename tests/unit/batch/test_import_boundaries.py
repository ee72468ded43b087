"""The batch workload runs with the server image: no scikit-learn, pandas, kopf, kubernetes or operator
code; pyarrow and onnxruntime are there. Every batch module must import with the others blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.unit.api.crd_tools import REPO
from tests.unit.packaging.images import IMAGES

BLOCKED = (
    "sklearn", "skl2onnx", "kopf", "kubernetes", "pandas", "scipy", "pydantic_settings",
    "kubeloop.controllers", "kubeloop.kube", "kubeloop.trainer", "kubeloop.planning", "kubeloop.operator",
)  # fmt: skip
PROBE = textwrap.dedent(
    """
    import importlib.abc, pkgutil, sys
    BLOCKED = {blocked!r}

    def blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ModuleNotFoundError(f"{{name}} is blocked: the server image does not have it")
            return None

    sys.meta_path.insert(0, Blocker())
    import kubeloop.batch
    modules = {first!r} + [m.name for m in pkgutil.walk_packages(kubeloop.batch.__path__, "kubeloop.batch.")]
    for module in modules:
        if not module.endswith("__main__"):
            __import__(module)
    import kubeloop.batch.__main__
    print("imported", *modules)
    """
)


def probe(first: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE.format(blocked=BLOCKED, first=first)], cwd=REPO,
                          capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_batch_imports_without_what_the_server_image_lacks() -> None:
    result = probe(["kubeloop.contracts.batch"])
    assert result.returncode == 0, result.stderr
    for module in ("shard", "reading", "rows", "output", "notify", "units", "pipeline"):
        assert f"kubeloop.batch.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = probe(["kubeloop.planning"])
    assert result.returncode != 0 and "kubeloop.planning is blocked" in result.stderr


def test_the_server_image_carries_the_batch_workload() -> None:
    (server,) = [image for image in IMAGES if image.component == "server"]
    assert "kubeloop.batch" in server.imports
