"""The server image has no scikit-learn, kopf, kubernetes, pandas or pydantic-settings, and no operator
code: every serving module (and a whole app) must come up with those imports blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.unit.api.crd_tools import REPO

BLOCKED = (
    "sklearn",
    "skl2onnx",
    "kopf",
    "kubernetes",
    "pandas",
    "scipy",
    "pyarrow",
    "pydantic_settings",
    "kubeloop.controllers",
    "kubeloop.kube",
    "kubeloop.trainer",
    "kubeloop.planning",
    "kubeloop.operator",
)

PROBE = textwrap.dedent(
    """
    import importlib.abc
    import pkgutil
    import sys

    BLOCKED = {blocked!r}

    def blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if blocked(name):
                raise ModuleNotFoundError(f"{{name}} is blocked: the server image does not have it")
            return None

    sys.meta_path.insert(0, Blocker())
    import kubeloop.serving
    found = pkgutil.walk_packages(kubeloop.serving.__path__, "kubeloop.serving.")
    modules = {first!r} + [m.name for m in found]
    for module in modules:
        __import__(module)
    from kubeloop.contracts.serving import ServingSettings
    from kubeloop.serving.app import create_app
    from kubeloop.store.client import Store
    settings = ServingSettings(model_name="m", model_version=1, model_uri="file:///nowhere/model.onnx",
                               model_sha256="0" * 64, store_root="file:///tmp/nowhere")
    app = create_app(settings, Store())
    assert "/v2/models/{{name}}/infer" in app.openapi()["paths"]
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print("imported", *modules)
    """
)


def run_probe(first: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=BLOCKED, first=first)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": f"{REPO / 'operator'}", "PATH": "/usr/bin:/bin"},
    )


def test_server_imports_without_what_its_image_lacks() -> None:
    result = run_probe(["kubeloop.contracts.serving"])
    assert result.returncode == 0, result.stderr
    for module in (
        "app",
        "runtime",
        "decoding",
        "inference",
        "requestlog",
        "feedback",
        "validate",
        "__main__",
    ):
        assert f"kubeloop.serving.{module}" in result.stdout


def test_the_blocker_really_blocks() -> None:
    result = run_probe(["kubeloop.trainer"])
    assert result.returncode != 0
    assert "kubeloop.trainer is blocked" in result.stderr
