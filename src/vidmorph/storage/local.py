"""Files under a root directory, served by the API behind HMAC-signed, expiring URLs."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import shutil
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from vidmorph.errors import StorageUnavailable


class LocalStorage:
    def __init__(self, root: Path, public_url: str, signing_key: bytes) -> None:
        self.root = root
        self.public_url = public_url
        self._key = signing_key
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        # Keys are ours, but a crafted URL reaches `local_path` too: never leave the root.
        if not parts or any(p in ("..", "/", "") for p in parts) or key.startswith("/"):
            raise FileNotFoundError(key)
        return self.root.joinpath(*parts)

    def put(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), target)

    @contextlib.contextmanager
    def local_copy(self, key: str, work_dir: Path) -> Iterator[Path]:
        # The file is local already: no copy.
        yield self.local_path(key)

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"The media directory {self.root} is missing.")

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return path

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Drop the per-asset folder once it is empty; other assets keep theirs.
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    def url(self, key: str, ttl_s: int) -> str:
        self._path(key)  # refuse a key that would leave the root, as every other method does
        expires = int(time.time()) + ttl_s
        return f"{self.public_url}/v1/runwayml/files/{quote(key)}?expires={expires}&sig={self.sign(key, expires)}"  # noqa: E501

    def upload_form(self, key: str, max_bytes: int, ttl_s: int) -> None:
        """None: uploads reach local files through Vidmorph's own signed form target."""
        return None

    def sign(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int, sig: str) -> bool:
        if expires < time.time():
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters.
        return hmac.compare_digest(self.sign(key, expires).encode(), sig.encode())
