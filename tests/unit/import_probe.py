"""One probe for every image's import boundary: a fresh interpreter whose imports of what the image
lacks fail, importing every module of a workload package, then running a few lines of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.unit.api.crd_tools import REPO

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
                raise ModuleNotFoundError(f"{{name}} is blocked: the {image} image does not have it")
            return None

    sys.meta_path.insert(0, Blocker())
    for module in {first!r}:
        __import__(module)
    package = __import__({package!r}, fromlist=["_"])
    modules = [m.name for m in pkgutil.walk_packages(package.__path__, {package!r} + ".")]
    for module in modules:
        if not module.endswith("__main__") or {main!r}:  # a __main__ that runs the program is left out
            __import__(module)
    """
)
CHECK = textwrap.dedent(
    """
    leaked = sorted(m for m in sys.modules if blocked(m))
    assert not leaked, leaked
    print("imported", *modules)
    """
)


def probe(package: str, image: str, blocked: tuple[str, ...], first: list[str], *, then: str = "",
          import_main: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the probe; `then` is more code (in the probe's globals) run before the leak check."""
    script = PROBE.format(blocked=blocked, image=image, first=first, package=package, main=import_main)
    return subprocess.run(
        [sys.executable, "-c", script + textwrap.dedent(then) + CHECK],
        cwd=REPO, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(REPO / "operator"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
