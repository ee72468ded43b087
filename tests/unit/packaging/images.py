"""The images under images/<component>/Dockerfile, and a small Dockerfile reader for the tests."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
IMAGES_DIR = REPO / "images"


@dataclass(frozen=True)
class Image:
    component: str  # images/<component>/, and the image name kubeloop/<component>
    extra: str  # the pyproject extra it installs, and only that one
    module: str  # python -m <module>
    # Packages that must import in that image's virtualenv, and those that must be absent.
    imports: tuple[str, ...]
    absent: tuple[str, ...]


IMAGES = (
    Image("operator", "operator", "kubeloop.operator",
          ("kubeloop.operator", "kubeloop.controllers", "kubeloop.kube", "kubeloop.planning",
           "kubeloop.api", "kubeloop.store", "kubeloop.contracts"),
          ("sklearn", "onnxruntime", "skl2onnx", "pandas", "fastapi")),
    Image("trainer", "trainer", "kubeloop.trainer",
          ("kubeloop.trainer", "kubeloop.store", "kubeloop.contracts"),
          ("kopf", "kubernetes", "fastapi")),
    Image("server", "server", "kubeloop.serving",
          ("kubeloop.serving", "kubeloop.batch", "kubeloop.store", "kubeloop.contracts"),
          ("sklearn", "skl2onnx", "pandas", "kopf", "kubernetes")),
    Image("router", "router", "kubeloop.router",
          ("kubeloop.router", "kubeloop.contracts"),
          ("sklearn", "onnxruntime", "numpy", "pandas", "fastapi", "kopf", "kubernetes", "minio")),
    Image("monitor", "monitor", "kubeloop.monitor",
          ("kubeloop.monitor", "kubeloop.store", "kubeloop.contracts"),
          ("sklearn", "onnxruntime", "pandas", "kopf", "kubernetes", "fastapi")),
)  # fmt: skip


def pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def extras() -> dict[str, list[str]]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    return dict(project["optional-dependencies"])


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        (found,) = [s for s in self.stages if s.name == name]
        return found

    def args(self, stage: Stage) -> dict[str, str]:
        """ARG defaults visible in a stage (global ones only where re-declared, as Docker does)."""
        visible: dict[str, str] = {}
        for args in stage.all("ARG"):
            name, _, default = args.partition("=")
            visible[name] = default or self.global_args.get(name, "")
        return visible

    def env(self, stage: Stage) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for args in stage.all("ENV"):
            for match in re.finditer(r'(\w+)=("[^"]*"|\S+)', args):
                pairs[match.group(1)] = match.group(2).strip('"')
        return pairs

    def labels(self, stage: Stage) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for args in stage.all("LABEL"):
            for match in re.finditer(r'([\w.-]+)=("[^"]*"|\S+)', args):
                pairs[match.group(1)] = match.group(2).strip('"')
        return pairs

    def entrypoint(self) -> list[str]:
        (raw,) = self.runtime.all("ENTRYPOINT")[-1:]
        parsed = json.loads(raw)  # exec form only: no shell at run time
        assert isinstance(parsed, list)
        return [str(part) for part in parsed]


def logical_lines(text: str) -> list[str]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current.strip())
    return lines


def parse(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages:
            assert keyword == "ARG", f"{path}: only ARG may come before the first FROM, got {keyword}"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return Dockerfile(path, global_args, stages)


def dockerfile(component: str) -> Dockerfile:
    return parse(IMAGES_DIR / component / "Dockerfile")


def copied_sources(dockerfile: Dockerfile, stage: Stage) -> list[str]:
    """The build-context paths a stage COPYs (not --from another stage)."""
    sources = []
    for args in stage.all("COPY"):
        parts = [p for p in args.split() if not p.startswith("--")]
        if "--from=" not in args:
            sources += parts[:-1]
    return sources
