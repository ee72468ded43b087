"""OCI archives cut from a shared OCI layout directory.

`podman save` into an existing layout skips the layers already there, so after a code change only
the new small layer is exported; writing the self-contained archive for one image from the layout
is then a plain file copy. The layout keeps the newest image of each reference (older manifests
and the blobs only they used are removed).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REF_NAME = "org.opencontainers.image.ref.name"


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def newest_per_ref(layout: Path) -> list[dict[str, Any]]:
    """The index's descriptors, only the last one for each reference name."""
    by_ref: dict[str, dict[str, Any]] = {}
    for descriptor in _read_json(layout / "index.json")["manifests"]:
        by_ref[descriptor.get("annotations", {}).get(REF_NAME, descriptor["digest"])] = descriptor
    return list(by_ref.values())


def manifest_blobs(layout: Path, descriptor: dict[str, Any]) -> list[str]:
    """Digests of the manifest, its config and its layers."""
    manifest = _read_json(_blob(layout, descriptor["digest"]))
    return [
        descriptor["digest"],
        manifest["config"]["digest"],
        *(layer["digest"] for layer in manifest["layers"]),
    ]


def write_archive(layout: Path, ref: str, archive: Path) -> None:
    """An OCI archive (tar of an OCI layout) holding only the image named `ref` in the layout."""
    (descriptor,) = [d for d in newest_per_ref(layout) if d.get("annotations", {}).get(REF_NAME) == ref]
    index = json.dumps({"schemaVersion": 2, "manifests": [descriptor]}).encode()
    with tarfile.open(archive, "w") as tar:
        tar.add(layout / "oci-layout", "oci-layout")
        info = tarfile.TarInfo("index.json")
        info.size, info.mode = len(index), 0o644
        tar.addfile(info, io.BytesIO(index))
        for digest in dict.fromkeys(manifest_blobs(layout, descriptor)):
            tar.add(_blob(layout, digest), _blob(Path(), digest).as_posix())


def manifest_digest(archive: Path) -> str | None:
    """The image's manifest digest from the archive's index.json (what `ctr images ls` shows), or
    None for an archive without one (Docker's own format before Docker 25)."""
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name.removeprefix("./") == "index.json":
                index = tar.extractfile(member)
                assert index is not None
                manifests = json.load(index)["manifests"]
                return str(manifests[0]["digest"]) if len(manifests) == 1 else None
    return None


def collect_garbage(layout: Path) -> None:
    """Keep the newest manifest per reference in the index, and only the blobs those use."""
    descriptors = newest_per_ref(layout)
    index = _read_json(layout / "index.json")
    index["manifests"] = descriptors
    partial = layout / "index.json.tmp"
    partial.write_text(json.dumps(index))
    os.replace(partial, layout / "index.json")
    used = {_blob(layout, d) for descriptor in descriptors for d in manifest_blobs(layout, descriptor)}
    for blob in (layout / "blobs").glob("*/*"):
        if blob not in used:
            blob.unlink()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created) across processes, held for the block."""
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
