"""BlobStorage: where media bytes live, and the signed, expiring URLs that reach them."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol


class BlobStorage(Protocol):
    """Keys are relative POSIX paths chosen by the service (`<user>/<uuid>/video.mp4`).

    Every method raises `vidmorph.errors.StorageUnavailable` when the store cannot be reached.
    """

    def put(self, key: str, source: Path) -> None:
        """Take ownership of `source` (moved or uploaded, then gone from where it was)."""

    def local_copy(self, key: str, work_dir: Path) -> AbstractContextManager[Path]:
        """A readable local file with the blob's bytes for the duration of the `with` (a copy
        under `work_dir` that is removed afterwards where the blob is remote); raises
        FileNotFoundError for a missing blob."""

    def delete(self, key: str) -> None:
        """Remove the blob; missing blobs are not an error."""

    def url(self, key: str, ttl_s: int) -> str:
        """A URL anyone holding it may GET until it expires."""

    def upload_form(
        self, key: str, max_bytes: int, ttl_s: int
    ) -> tuple[str, dict[str, str]] | None:
        """A form target (URL, fields) a client may POST a file of at most `max_bytes` to,
        straight into `key`, for `ttl_s`; None where uploads must come through this server."""

    def check(self) -> None:
        """Raise StorageUnavailable unless the store answers now (for /readyz)."""
