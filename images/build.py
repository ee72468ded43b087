"""Build the images into OCI archives, cached by content: `python -m images.build` (`make images`).

An archive is named `<name>-<key12>.oci.tar` in the cache directory, where the key is a sha256 over
the Dockerfile, the filtered build context (paths, modes and bytes), the build arguments, the
reference and the base images' ids. When the archive for the current key exists, nothing is built.
The archive names the image by its full reference inside, so `ctr -n k8s.io images import
<archive>` makes it available to containerd as e.g. `docker.io/kubeloop/server:0.1.0`.

    from images.build import build_all, build_image
    for image in build_all():            # or build_all(["server", "router"])
        print(image.ref, image.archive)

Environment: KUBELOOP_IMAGES (the cache directory, default $XDG_CACHE_HOME/kubeloop-images or
~/.cache/kubeloop-images), KUBELOOP_IMAGE_BUILDER (docker or buildah; default Docker when its
engine answers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from images import context, engine, oci

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = ("operator", "trainer", "server", "router", "monitor")
KEEP = 2  # archives kept per image name, the most recently used: two branches stay cached
KEY_SCHEME = "kubeloop-images/1"  # bump when what the key covers changes

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuiltImage:
    name: str  # e.g. "server": the archive's file name starts with it
    ref: str  # full reference, e.g. docker.io/kubeloop/server:0.1.0
    archive: Path
    key: str  # sha256 hex of everything the image is built from
    digest: str | None  # manifest digest, as `ctr images ls` shows it once imported: skip a re-import
    cached: bool  # the archive was already there: nothing was built
    seconds: float
    size: int  # bytes of the archive


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubeloop-images"
    return Path(os.environ.get("KUBELOOP_IMAGES") or default)


def normalize(ref: str) -> str:
    """Docker's: `kubeloop/x:1` -> `docker.io/kubeloop/x:1`, `python` -> `docker.io/library/python:latest`."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def project_version(repo: Path = REPO) -> str:
    version = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    return str(version)


def revision(repo: Path = REPO) -> str:
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def component_ref(component: str, version: str | None = None) -> str:
    """The reference the chart uses (values.yaml images.<component>.repository), with the project version."""
    return normalize(f"kubeloop/{component}:{version or project_version()}")


def from_images(dockerfile_text: str, build_args: dict[str, str]) -> list[str]:
    """The external images a Dockerfile's stages start FROM (not `scratch`, not an earlier stage)."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    lines = re.sub(r"\\\n", " ", dockerfile_text).splitlines()
    for line in lines:
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not stages and not images and len(words) > 1:
            name, _, default = words[1].partition("=")
            args[name] = build_args.get(name, default.strip('"'))
        elif keyword == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), rest[0])
            if image.lower() != "scratch" and image not in stages and normalize(image) not in images:
                images.append(normalize(image))
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2])
    return images


def cache_key(*, dockerfile_text: str, context_digest: str, build_args: dict[str, str], ref: str,
              base_ids: Sequence[tuple[str, str]], builder: str) -> str:  # fmt: skip
    h = hashlib.sha256()
    parts = [KEY_SCHEME, builder, ref, dockerfile_text, context_digest,
             json.dumps(sorted(build_args.items())), json.dumps(list(base_ids))]  # fmt: skip
    for part in parts:  # length-prefixed: no two different inputs hash the same bytes
        data = part.encode()
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def ignore_patterns(dockerfile: Path, context_dir: Path) -> list[context.Pattern]:
    """BuildKit's precedence: `<Dockerfile>.dockerignore` next to it, else the context's .dockerignore."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context_dir / ".dockerignore"):
        if candidate.exists():
            return context.read_patterns(candidate.read_text().splitlines())
    return []


@dataclass(frozen=True)
class Plan:
    """What an image is built from, and where its archive goes: everything but the build itself."""

    name: str
    ref: str
    dockerfile_text: str
    context_dir: Path
    entries: list[context.Entry]
    context_digest: str
    build_args: dict[str, str]
    key: str
    archive: Path


def plan(name: str, dockerfile: Path, context_dir: Path, ref: str, *, build_args: dict[str, str],
         builder: engine.Engine, cache: Path, log: Log = print) -> Plan:  # fmt: skip
    """Hash the inputs (the FROM images are made available first, as their ids are part of the key)."""
    ref, text = normalize(ref), dockerfile.read_text()
    entries = context.walk(context_dir, ignore_patterns(dockerfile, context_dir))
    base_ids = [(image, builder.base_id(image, log)) for image in from_images(text, build_args)]
    digest = context.digest(context_dir, entries)
    key = cache_key(dockerfile_text=text, context_digest=digest, build_args=build_args, ref=ref,
                    base_ids=base_ids, builder=builder.name)  # fmt: skip
    archive = cache / f"{name}-{key[:12]}.oci.tar"
    return Plan(name, ref, text, context_dir, entries, digest, dict(build_args), key, archive)


def build_image(name: str, dockerfile: Path, context_dir: Path, ref: str,
                build_args: dict[str, str] | None = None, *, builder: engine.Engine | None = None,
                cache: Path | None = None, log: Log = print) -> BuiltImage:  # fmt: skip
    """Build one image (unless its archive is cached) and return where its archive is.

    `dockerfile` may live anywhere; `context_dir` is filtered by the Dockerfile's ignore rules.
    `FROM scratch` needs no base; other FROM images are pulled (Docker) or must be the local base
    or already in the containers storage (buildah)."""
    started = time.monotonic()
    builder, cache = builder or engine.detect(), cache or cache_dir()
    p = plan(name, dockerfile, context_dir, ref, build_args=build_args or {}, builder=builder, cache=cache,
             log=log)  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    with oci.locked(_ref_lock(p.ref)):  # one build per reference; a second caller finds the archive
        cached = p.archive.exists()
        if cached:
            os.utime(p.archive)  # last use, for pruning
        else:
            _build(builder, p)
            _prune(cache, name)
    size, digest = p.archive.stat().st_size, oci.manifest_digest(p.archive)
    return BuiltImage(name, p.ref, p.archive, p.key, digest, cached, time.monotonic() - started, size)


def _ref_lock(ref: str) -> Path:
    """Machine-wide, not per cache directory: a reference is one tag in the engine's storage, and
    between the build and the export no other build may move it."""
    digest = hashlib.sha256(ref.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kubeloop-image-{digest}.lock"


def _build(builder: engine.Engine, p: Plan) -> None:
    with tempfile.TemporaryDirectory(prefix="kubeloop-image-") as tmp:
        filtered, dockerfile = Path(tmp) / "context", Path(tmp) / "Dockerfile"
        context.copy(p.context_dir, p.entries, filtered)
        if context.digest(filtered, p.entries) != p.context_digest:
            raise RuntimeError(f"{p.name}: files changed while the build context was copied; run again")
        dockerfile.write_text(p.dockerfile_text)  # outside the context, so it is not part of it
        builder.build(dockerfile, filtered, p.ref, p.build_args)
    partial = p.archive.with_name(f".{p.archive.name}.{os.getpid()}.tmp")
    try:
        builder.export(p.ref, partial)
        os.replace(partial, p.archive)
    finally:
        partial.unlink(missing_ok=True)


def _prune(cache: Path, name: str) -> None:
    pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{12}}\.oci\.tar")
    archives = [p for p in cache.iterdir() if pattern.fullmatch(p.name)]
    for old in sorted(archives, key=lambda p: p.stat().st_mtime, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)


def build_all(components: Sequence[str] | None = None, *, python_image: str | None = None,
              builder: engine.Engine | None = None, cache: Path | None = None,
              log: Log = print) -> list[BuiltImage]:  # fmt: skip
    """The kubeloop images (all five by default), as `kubeloop/<component>:<project version>`."""
    unknown = set(components or ()) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown components {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
    builder = builder or engine.detect()
    args = {"VERSION": project_version(), "REVISION": revision()}
    if python_image:
        args["PYTHON_IMAGE"] = python_image
    built = []
    for component in components or COMPONENTS:
        dockerfile = REPO / "images" / component / "Dockerfile"
        image = build_image(component, dockerfile, REPO, component_ref(component), args,
                            builder=builder, cache=cache, log=log)  # fmt: skip
        log(describe(image))
        built.append(image)
    return built


def describe(image: BuiltImage) -> str:
    state = "cached" if image.cached else "built"
    return f"{image.ref:<42} {state:<6} {image.seconds:7.1f}s {image.size / 1e6:8.1f} MB  {image.archive}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m images.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("components", nargs="*", help=f"default: all of {', '.join(COMPONENTS)}")
    parser.add_argument("--python-image", help="PYTHON_IMAGE build argument (default: the Dockerfiles')")
    options = parser.parse_args(argv)
    builder = engine.detect()
    print(f"building with {builder.name} into {cache_dir()}", flush=True)
    build_all(options.components or None, python_image=options.python_image, builder=builder,
              log=lambda line: print(line, flush=True))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
