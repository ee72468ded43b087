"""Hand built images to a containerd: `ctr images import`, skipped when containerd already has the
same manifest under the reference (an import reads and digests the whole archive: about 12 s for
the trainer's even when nothing changed)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from images.build import BuiltImage


def present(address: str, namespace: str = "k8s.io", ctr: str = "ctr") -> dict[str, str]:
    """reference -> manifest digest of the images containerd holds in `namespace`."""
    out = subprocess.run([ctr, "--address", address, "--namespace", namespace, "images", "ls"],
                         check=True, capture_output=True, text=True)  # fmt: skip
    refs = {}
    for line in out.stdout.splitlines()[1:]:  # REF TYPE DIGEST SIZE PLATFORMS LABELS
        fields = line.split()
        if len(fields) >= 3:
            refs[fields[0]] = fields[2]
    return refs


def import_images(images: Sequence[BuiltImage], address: str, namespace: str = "k8s.io",
                  ctr: str = "ctr") -> list[str]:  # fmt: skip
    """Import the archives containerd does not hold yet; returns the references imported."""
    held = present(address, namespace, ctr)
    imported = []
    for image in images:
        if image.digest is not None and held.get(image.ref) == image.digest:
            continue
        subprocess.run([ctr, "--address", address, "--namespace", namespace, "images", "import",
                        str(image.archive)], check=True, capture_output=True, text=True)  # fmt: skip
        imported.append(image.ref)
    return imported
