"""The images a node runs: the product's five, built from this working tree, the base python image
(pods that name `python:3.11-slim-bookworm` run it), the pause sandbox and CoreDNS.

Nothing can be pulled here, so each node's containerd imports them from the builder's archives
(images/build.py: cached by content, so an unchanged tree costs only the hashing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from images.build import build_all, build_base_archive, build_image

from tests.infra.testbin import binaries, versions

DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"


@dataclass(frozen=True)
class NodeImages:
    pause: str
    coredns: str
    archives: list[Path]


def node_images() -> NodeImages:
    bins = binaries().require("pause", "coredns")
    v = versions()
    pause = build_image("pause", DOCKERFILES / "pause" / "Dockerfile", bins.pause.parent,
                        f"kubeloop.local/pause:{v['K8S_VERSION']}")  # fmt: skip
    coredns = build_image("coredns", DOCKERFILES / "coredns" / "Dockerfile", bins.coredns.parent,
                          f"kubeloop.local/coredns:{v['COREDNS_VERSION']}")  # fmt: skip
    product = build_all()
    archives = [pause.archive, coredns.archive, build_base_archive().archive, *(i.archive for i in product)]
    return NodeImages(pause=pause.ref, coredns=coredns.ref, archives=archives)
