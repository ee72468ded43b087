"""The trainer image has neither kopf nor kubernetes, and workloads never import the operator's code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BLOCKED = (
    "kopf",
    "kubernetes",
    "kubeloop.controllers",
    "kubeloop.kube",
    "kubeloop.operator",
    "kubeloop.planning",
)
PROBE = textwrap.dedent(
    """
    import importlib.abc, pkgutil, sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"{{name}} is blocked: the trainer must not import it")
            return None

    sys.meta_path.insert(0, Blocker())
    import kubeloop.trainer
    modules = [m.name for m in pkgutil.walk_packages(kubeloop.trainer.__path__, "kubeloop.trainer.")]
    for module in modules:
        if not module.endswith("__main__"):
            __import__(module)
    print("imported", *modules)
    """
)


def run(blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"}
    probe = PROBE.format(blocked=blocked)
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False, env=env
    )


def test_the_trainer_imports_without_kopf_kubernetes_or_operator_code() -> None:
    result = run(BLOCKED)
    assert result.returncode == 0, result.stderr
    assert "kubeloop.trainer.main" in result.stdout and "kubeloop.trainer.export" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run(("kubeloop.trainer.export",))
    assert result.returncode != 0 and "kubeloop.trainer.export is blocked" in result.stderr
