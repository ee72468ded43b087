"""Every module of api and planning must import without kopf and kubernetes (DESIGN.md §2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.unit.api.crd_tools import REPO

BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import importlib.util
    import sys

    BLOCKED = ("kopf", "kubernetes")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{name} is blocked: api/planning must not import it")
            return None

    sys.meta_path.insert(0, Blocker())
    import pkgutil
    import kubeloop.api, kubeloop.planning
    modules = ["kubeloop.api", "kubeloop.planning"]
    for package in (kubeloop.api, kubeloop.planning):
        modules += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    for module in modules:
        __import__(module)
    from kubeloop.api.crdgen import all_crds
    assert len(all_crds()) == 5
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("imported", *modules)
    """
)


def test_api_imports_without_kopf_and_kubernetes() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": f"{REPO / 'operator'}", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "kubeloop.api.crdgen" in result.stdout
    assert "kubeloop.planning.core" in result.stdout and "kubeloop.planning.trainingrun" in result.stdout


def test_the_blocker_really_blocks() -> None:
    probe = BLOCKER.replace('modules = ["kubeloop.api"', 'modules = ["kopf", "kubeloop.api"')
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "kopf is blocked" in result.stderr
