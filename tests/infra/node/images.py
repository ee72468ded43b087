"""The images a node runs: the product's five, built from this working tree, the base python image
(pods that name `python:3.11-slim-bookworm` run it), the pause sandbox and CoreDNS.

Nothing can be pulled here, so each node's containerd imports them from the builder's archives
(images/build.py: cached by content, so an unchanged tree costs only the hashing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from images import base, engine
from images.build import BuiltImage, build_all, build_image, cache_dir
from images.oci import manifest_digest
from tests.infra.testbin import binaries, versions

DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"


@dataclass(frozen=True)
class NodeImages:
    pause: str
    coredns: str
    images: list[BuiltImage]


def base_image(builder: engine.Engine) -> BuiltImage:
    """The base the product images are built FROM, as an archive of its own (keyed by its id)."""
    started = time.monotonic()
    image_id = builder.base_id(base.BASE_REF, print).removeprefix("sha256:")
    archive = cache_dir() / f"python-base-{image_id[:12]}.oci.tar"
    cached = archive.exists()
    if not cached:
        temporary = archive.with_suffix(".tmp")
        builder.export(base.BASE_REF, temporary)
        temporary.replace(archive)
    return BuiltImage(name="python-base", ref=base.BASE_REF, archive=archive, key=image_id,
                      digest=manifest_digest(archive), cached=cached, seconds=time.monotonic() - started,
                      size=archive.stat().st_size)  # fmt: skip


def node_images() -> NodeImages:
    bins = binaries().require("pause", "coredns")
    v = versions()
    builder = engine.detect()
    pause = build_image("pause", DOCKERFILES / "pause" / "Dockerfile", bins.pause.parent,
                        f"kubeloop.local/pause:{v['K8S_VERSION']}", builder=builder)  # fmt: skip
    coredns = build_image("coredns", DOCKERFILES / "coredns" / "Dockerfile", bins.coredns.parent,
                          f"kubeloop.local/coredns:{v['COREDNS_VERSION']}", builder=builder)  # fmt: skip
    product = build_all(builder=builder)
    return NodeImages(pause=pause.ref, coredns=coredns.ref,
                      images=[pause, coredns, base_image(builder), *product])  # fmt: skip
