"""Which local runtime runs a container image, since nothing here can pull one.

- our images (`kubeloop/<component>`, any registry prefix or tag) run `python -m kubeloop.<module>`
  with the project's interpreter when no command is given;
- `python:*` images run the given command, with `python`/`python3` meaning the same interpreter;
- anything else is refused, and the pod shows why.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass

KUBELOOP_MODULES = {
    "operator": "kubeloop.operator",
    "trainer": "kubeloop.trainer",
    "server": "kubeloop.serving",
    "router": "kubeloop.router",
    "monitor": "kubeloop.monitor",
    "batch": "kubeloop.batch",
}
DEFAULT_RULES = (
    ("kubeloop/*", "kubeloop"),
    ("*/kubeloop/*", "kubeloop"),
    ("python", "python"),
    ("library/python", "python"),
    ("*/library/python", "python"),
)


class ImageNotMapped(Exception):
    """No rule maps the image to a local runtime."""


@dataclass(frozen=True)
class ImageMap:
    python: str
    rules: tuple[tuple[str, str], ...] = DEFAULT_RULES

    def runtime(self, image: str) -> tuple[str, str]:
        """(runtime, repository) for an image reference, e.g. ('kubeloop', 'kubeloop/server')."""
        repository = _repository(image)
        for pattern, runtime in self.rules:
            if fnmatch.fnmatchcase(repository, pattern):
                return runtime, repository
        known = ", ".join(pattern for pattern, _ in self.rules)
        raise ImageNotMapped(f"image {image!r} has no local runtime on this node (mapped: {known})")

    def argv(self, image: str, command: list[str], args: list[str], path: str) -> list[str]:
        runtime, repository = self.runtime(image)
        if not command:
            if runtime == "kubeloop":
                component = repository.rsplit("/", 1)[-1].removeprefix("kubeloop-")
                if component not in KUBELOOP_MODULES:
                    raise ImageNotMapped(f"image {image!r}: unknown kubeloop component {component!r}")
                return [self.python, "-m", KUBELOOP_MODULES[component], *args]
            return [self.python, *args]
        return [self._executable(command[0], path), *command[1:], *args]

    def _executable(self, name: str, path: str) -> str:
        if os.path.basename(name) in ("python", "python3") or name.startswith("python3."):
            return self.python
        return name if "/" in name else shutil.which(name, path=path) or name


def _repository(image: str) -> str:
    """Strip digest and tag; `docker.io/` and the implicit `library/` are kept as written."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name
