"""Store locations: s3://<bucket>/<key> in a cluster, file:///<path> in tests."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class StoreUri:
    scheme: str  # "s3" | "file"
    bucket: str  # empty for file://
    key: str  # the object key, or the absolute path for file://

    @classmethod
    def parse(cls, text: str) -> StoreUri:
        parsed = urlparse(text)
        if parsed.scheme == "s3" and parsed.netloc and parsed.path.strip("/"):
            return cls("s3", parsed.netloc, parsed.path.lstrip("/"))
        if parsed.scheme == "file" and not parsed.netloc and parsed.path.startswith("/"):
            return cls("file", "", parsed.path)
        raise ValueError(f"not a store location: {text!r} (expected s3://bucket/key or file:///path)")

    def child(self, name: str) -> StoreUri:
        """The location `name` under this one, which is taken as a folder."""
        return StoreUri(self.scheme, self.bucket, f"{self.key.rstrip('/')}/{name}")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.scheme == "s3" else f"file://{self.key}"
