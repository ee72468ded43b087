"""Packages from PyPI for tests that install them, through a wheelhouse kept next to the test binaries.

The package index here sends no cache headers, so pip's own cache stays empty and every install
would download again. The wheelhouse keeps the downloads; installs run from it offline and go back
to PyPI only for what it lacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.infra.testbin import cache_root

WHEELHOUSE = cache_root() / "wheelhouse" / f"py{sys.version_info.major}{sys.version_info.minor}"


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv, no KUBELOOP_*: the venv sees only what it installed."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("KUBELOOP_")}
    return {**env, "PYTHONNOUSERSITE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def run(*argv: str | Path, cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, env=clean_env(**env), capture_output=True,
                            text=True, check=False, timeout=600)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} exited {result.returncode}:\n{result.stderr[-4000:]}"
        )
    return result


def pip_offline_first(python: Path, action: list[str], requirements: list[str], wheelhouse: Path,
                      cwd: Path) -> None:  # fmt: skip
    """`pip <action>` from the wheelhouse alone; on a miss, fill it from PyPI and try again."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    offline = [python, "-m", "pip", *action, "--quiet", "--no-index", f"--find-links={wheelhouse}"]
    if run(*offline, *requirements, cwd=cwd, check=False).returncode == 0:
        return
    run(python, "-m", "pip", "download", "--quiet", f"--dest={wheelhouse}", *requirements, cwd=cwd)
    for copy in wheelhouse.glob("kubeloop-*"):  # the project's own wheel is always the fresh one
        copy.unlink()
    run(*offline, *requirements, cwd=cwd)
