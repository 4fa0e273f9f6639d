"""BlobStorage: where media bytes live, and the signed, expiring URLs that reach them."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class BlobStorage(Protocol):
    """Keys are relative POSIX paths chosen by the service (`<user>/<uuid>/video.mp4`)."""

    def put(self, key: str, source: Path) -> None:
        """Take ownership of `source` (it is moved, not copied, where possible)."""

    def local_path(self, key: str) -> Path:
        """A readable local file with the blob's bytes; raises FileNotFoundError."""

    def delete(self, key: str) -> None:
        """Remove the blob; missing blobs are not an error."""

    def url(self, key: str, ttl_s: int) -> str:
        """A URL anyone holding it may GET until it expires."""
