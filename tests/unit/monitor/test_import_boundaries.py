"""The monitor image has NumPy, SciPy and the store client only: every monitor module must import with
scikit-learn, onnxruntime, pandas, kopf, kubernetes and the operator's code blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.unit.api.crd_tools import REPO

BLOCKED = (
    "sklearn", "onnxruntime", "skl2onnx", "pandas", "kopf", "kubernetes", "fastapi", "pydantic_settings",
    "kubeloop.controllers", "kubeloop.kube", "kubeloop.trainer", "kubeloop.planning", "kubeloop.operator",
    "kubeloop.serving",
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
                raise ModuleNotFoundError(f"{{name}} is blocked: the monitor image does not have it")
            return None

    sys.meta_path.insert(0, Blocker())
    import {first}
    import kubeloop.monitor
    modules = [m.name for m in pkgutil.walk_packages(kubeloop.monitor.__path__, "kubeloop.monitor.")]
    for module in modules:
        if not module.endswith("__main__"):  # it runs the program
            __import__(module)
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print("imported", *modules)
    """
)


def run_probe(first: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=BLOCKED, first=first)],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": f"{REPO / 'operator'}", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_monitor_imports_without_what_its_image_lacks() -> None:
    result = run_probe("kubeloop.contracts.monitoring")
    assert result.returncode == 0, result.stderr
    for module in ("main", "run", "scan", "stats", "accumulate", "drift", "join", "metrics", "html"):
        assert f"kubeloop.monitor.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_probe("kubeloop.trainer")
    assert result.returncode != 0 and "kubeloop.trainer is blocked" in result.stderr
