"""Writing the run's files to its store folder, each with its sha256 and size recorded."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeloop.contracts.model import StoredFile
from kubeloop.store.client import Store
from kubeloop.store.uri import StoreUri
from kubeloop.trainer import logs

CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".onnx": "application/onnx",
}


@dataclass
class RunFolder:
    """task.output: s3://<bucket>/runs/<ns>/<run>/<uid>/ (or file:// in tests)."""

    store: Store
    output: str
    written: dict[str, StoredFile] = field(default_factory=dict)

    def location(self, name: str) -> str:
        return str(StoreUri.parse(self.output).child(name))

    def put(self, name: str, data: bytes) -> StoredFile:
        suffix = name[name.rfind(".") :]
        content_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
        with logs.timed("artifact-written", file=name, bytes=len(data)) as timing:
            digest = self.store.put_bytes(self.location(name), data, content_type=content_type)
            timing["sha256"] = digest
        stored = StoredFile(sha256=digest, size=len(data))
        self.written[name] = stored
        return stored

    def put_text(self, name: str, text: str) -> StoredFile:
        return self.put(name, text.encode())
