"""The image builder's cache (images/build.py), with a fake engine: what changes the key and what does
not, a cached archive is not rebuilt, old archives are pruned. The real builds are measured by hand
(images/README.md)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from images import build, containerd, oci
from tests.unit.packaging.images import REPO

DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS deps
COPY pyproject.toml /tmp/
FROM deps AS runtime
COPY app/ /app/
"""


class FakeEngine:
    """Records builds; "exports" an archive with an OCI index naming the image."""

    name = "fake"

    def __init__(self) -> None:
        self.builds: list[tuple[str, list[str]]] = []
        self.ids = {"docker.io/library/python:3.11-slim-bookworm": "sha256:base1"}

    def base_id(self, ref: str, log: build.Log) -> str:
        return self.ids[ref]

    def build(self, dockerfile: Path, context: Path, ref: str, build_args: dict[str, str]) -> None:
        files = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
        assert dockerfile.parent != context and not (context / "Dockerfile").exists()
        self.builds.append((ref, files))

    def export(self, ref: str, archive: Path) -> None:
        descriptor = {"digest": f"sha256:{len(self.builds):064x}", "annotations": {oci.REF_NAME: ref}}
        index = {"schemaVersion": 2, "manifests": [descriptor]}
        (archive.parent / "index.json").write_text(json.dumps(index))
        with tarfile.open(archive, "w") as tar:
            tar.add(archive.parent / "index.json", "index.json")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "app" / "notes.txt").write_text("ignored\n")
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "Dockerfile.dockerignore").write_text("*\n!pyproject.toml\n!app/\n**/*.txt\n")
    return root


def key(project: Path, engine: FakeEngine, tmp_path: Path, **args: str) -> str:
    plan = build.plan("app", project / "Dockerfile", project, "kubeloop/app:1", build_args=args,
                      builder=engine, cache=tmp_path / "cache")  # fmt: skip
    return plan.key


def test_the_key_follows_what_the_image_is_built_from(project: Path, tmp_path: Path) -> None:
    engine = FakeEngine()
    first = key(project, engine, tmp_path)
    assert key(project, engine, tmp_path) == first  # stable

    (project / "app" / "notes.txt").write_text("an ignored file changed\n")
    (project / "unrelated.md").write_text("not in the context\n")
    assert key(project, engine, tmp_path) == first

    (project / "app" / "main.py").write_text("print('changed')\n")
    second = key(project, engine, tmp_path)
    assert second != first

    (project / "Dockerfile").write_text(DOCKERFILE + "USER 65532\n")
    third = key(project, engine, tmp_path)
    assert third != second

    assert key(project, engine, tmp_path, REVISION="abc") != third
    assert key(project, engine, tmp_path, REVISION="abc") != key(project, engine, tmp_path, REVISION="abd")

    engine.ids["docker.io/library/python:3.11-slim-bookworm"] = "sha256:base2"  # the base was rebuilt
    assert key(project, engine, tmp_path) != third


def test_a_cached_archive_is_not_rebuilt_and_old_ones_are_pruned(project: Path, tmp_path: Path) -> None:
    engine, cache = FakeEngine(), tmp_path / "cache"

    def build_once() -> build.BuiltImage:
        return build.build_image("app", project / "Dockerfile", project, "kubeloop/app:1", {},
                                 builder=engine, cache=cache)  # fmt: skip

    first = build_once()
    assert not first.cached and first.ref == "docker.io/kubeloop/app:1"
    assert first.archive == cache / f"app-{first.key[:12]}.oci.tar" and first.archive.exists()
    assert first.digest == f"sha256:{1:064x}"
    # The builder got exactly the filtered context, the Dockerfile outside it.
    assert engine.builds == [("docker.io/kubeloop/app:1", ["app/main.py", "pyproject.toml"])]

    again = build_once()
    assert again.cached and again.archive == first.archive and len(engine.builds) == 1

    archives = [first.archive]
    for n in range(build.KEEP + 1):
        (project / "app" / "main.py").write_text(f"print({n})\n")
        archives.append(build_once().archive)
    kept = sorted(p.name for p in cache.glob("app-*.oci.tar"))
    assert kept == sorted(p.name for p in archives[-build.KEEP :])
    assert not list(cache.glob(".*.tmp"))  # written under a temporary name, then renamed


@pytest.mark.parametrize(
    ("dockerfile", "args", "expected"),
    [
        (DOCKERFILE, {}, ["docker.io/library/python:3.11-slim-bookworm"]),
        (DOCKERFILE, {"PYTHON_IMAGE": "python:3.11-slim-bookworm@sha256:" + "a" * 64},
         ["docker.io/library/python:3.11-slim-bookworm@sha256:" + "a" * 64]),
        ("FROM scratch\nCOPY pause /pause\n", {}, []),
        ("FROM --platform=linux/amd64 golang:1.25 AS build\nFROM scratch\nCOPY --from=build /x /x\n", {},
         ["docker.io/library/golang:1.25"]),
        ("FROM ghcr.io/acme/base:2 AS a\nFROM a\n", {}, ["ghcr.io/acme/base:2"]),
    ],
)  # fmt: skip
def test_from_images_are_the_external_bases(
    dockerfile: str, args: dict[str, str], expected: list[str]
) -> None:
    assert build.from_images(dockerfile, args) == expected


@pytest.mark.parametrize(
    ("ref", "normalized"),
    [
        ("kubeloop/server:0.1.0", "docker.io/kubeloop/server:0.1.0"),
        ("python:3.11-slim-bookworm", "docker.io/library/python:3.11-slim-bookworm"),
        ("python", "docker.io/library/python:latest"),
        ("docker.io/kubeloop/server:0.1.0", "docker.io/kubeloop/server:0.1.0"),
        ("localhost:5000/x/y:1", "localhost:5000/x/y:1"),
        ("ghcr.io/acme/x@sha256:" + "b" * 64, "ghcr.io/acme/x@sha256:" + "b" * 64),
    ],
)  # fmt: skip
def test_references_are_normalized_as_docker_does(ref: str, normalized: str) -> None:
    assert build.normalize(ref) == normalized


def test_component_references_are_the_charts_with_the_project_version() -> None:
    values = (REPO / "charts" / "kubeloop" / "values.yaml").read_text()
    for component in build.COMPONENTS:
        assert f"repository: kubeloop/{component}\n" in values
        assert build.component_ref(component) == f"docker.io/kubeloop/{component}:{build.project_version()}"


def test_unknown_components_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown components"):
        build.build_all(["nope"], builder=FakeEngine())


def test_import_skips_what_containerd_already_holds(tmp_path: Path) -> None:
    """A fake ctr: `images ls` lists one image at the built digest; only the other one is imported."""
    calls = tmp_path / "calls"
    ctr = tmp_path / "ctr"
    ctr.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        'case "$*" in *" images ls") printf "REF TYPE DIGEST SIZE PLATFORMS LABELS\\n'
        'docker.io/kubeloop/a:1 manifest sha256:aa 1.0 MiB linux/amd64 -\\n"'
        ";; esac\n"
    )
    ctr.chmod(0o755)

    def image(name: str, digest: str) -> build.BuiltImage:
        ref = f"docker.io/kubeloop/{name}:1"
        return build.BuiltImage(name, ref, tmp_path / f"{name}.oci.tar", "k", digest, True, 0.0, 1)

    built = [image("a", "sha256:aa"), image("b", "sha256:bb")]
    assert containerd.import_images(built, "/run/x.sock", ctr=str(ctr)) == ["docker.io/kubeloop/b:1"]
    assert calls.read_text().splitlines() == [
        "--address /run/x.sock --namespace k8s.io images ls",
        f"--address /run/x.sock --namespace k8s.io images import {tmp_path / 'b.oci.tar'}",
    ]


def layout_with(tmp_path: Path, images: list[tuple[str, list[bytes]]]) -> Path:
    """An OCI layout holding manifests (in this order) for (reference, [config, *layers])."""
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"

    manifests = []
    for ref, (config, *layers) in images:
        manifest = {"config": {"digest": blob(config)}, "layers": [{"digest": blob(x)} for x in layers]}
        digest = blob(json.dumps(manifest).encode())
        manifests.append({"digest": digest, "annotations": {oci.REF_NAME: ref}})
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return layout


def test_an_archive_holds_only_its_image_and_the_layout_keeps_the_newest_per_reference(
    tmp_path: Path,
) -> None:
    layout = layout_with(tmp_path, [
        ("docker.io/kubeloop/a:1", [b"config-old", b"base", b"app-old"]),
        ("docker.io/kubeloop/b:1", [b"config-b", b"base", b"b"]),
        ("docker.io/kubeloop/a:1", [b"config-new", b"base", b"app-new"]),
    ])  # fmt: skip
    archive = tmp_path / "a.oci.tar"
    oci.write_archive(layout, "docker.io/kubeloop/a:1", archive)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        blobs = {tar.extractfile(n).read() for n in names if n.startswith("blobs/")}  # type: ignore[union-attr]
    assert names[:2] == ["oci-layout", "index.json"]
    assert [m["annotations"][oci.REF_NAME] for m in index["manifests"]] == ["docker.io/kubeloop/a:1"]
    assert {b"config-new", b"base", b"app-new"} < blobs and not {b"config-old", b"app-old", b"b"} & blobs
    assert oci.manifest_digest(archive) == index["manifests"][0]["digest"]

    oci.collect_garbage(layout)
    kept = {p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}
    assert {b"config-new", b"base", b"app-new", b"config-b", b"b"} <= kept
    assert not {b"config-old", b"app-old"} & kept
    assert len(json.loads((layout / "index.json").read_text())["manifests"]) == 2
