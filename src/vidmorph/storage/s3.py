"""Media in an S3-compatible object store (AWS S3, MinIO, R2, moto) through boto3.

`VIDMORPH_STORAGE_URL=s3://bucket/prefix` chooses it; `VIDMORPH_S3_ENDPOINT_URL` points at a
non-AWS endpoint, and credentials come from the standard AWS variables and files, as boto3 reads
them. Downloads go straight from the store to the client through presigned, expiring URLs; the
bucket is created on first use if it does not exist. Any failure to reach the store is raised
as `StorageUnavailable` (503 at the HTTP edge; workers retry, then fail the task clearly).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error, S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vidmorph.domain.media_types import served_type
from vidmorph.errors import StorageUnavailable

log = logging.getLogger(__name__)

#: SigV4 presigned URLs live at most a week
MAX_PRESIGN_S = 7 * 24 * 3600
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    return parts.netloc, parts.path.strip("/")


class S3Storage:
    def __init__(self, storage_url: str, endpoint_url: str = "") -> None:
        self.bucket, self.prefix = parse_storage_url(storage_url)
        session = boto3.session.Session()
        config = Config(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=3,
            read_timeout=60,
            signature_version="s3v4",
            # MinIO and moto serve buckets under the path, not as sub-domains.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self.region = session.region_name or "us-east-1"
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint_url or None, region_name=self.region, config=config
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    def _key(self, key: str) -> str:
        parts = PurePosixPath(key).parts
        if not parts or any(p in ("..", "/", "") for p in parts) or key.startswith("/"):
            raise FileNotFoundError(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _reaching(self, what: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise FileNotFoundError(what) from exc
            raise StorageUnavailable(f"Media storage refused the request ({code}).") from exc
        except S3UploadFailedError as exc:
            # boto3's upload_file wraps the store's ClientError (a 5xx, a NoSuchBucket) in this,
            # keeping only its text, "An error occurred (NoSuchBucket) ...".
            if "(NoSuchBucket)" in str(exc):
                raise FileNotFoundError(what) from exc
            log.warning("object store refused the upload of %s: %s", what, exc)
            raise StorageUnavailable("Media storage refused the upload.") from exc
        except (BotoCoreError, Boto3Error) as exc:
            # Boto3Error: download_file's RetriesExceededError when the body keeps breaking off.
            log.warning("object store unreachable during %s: %s", what, exc)
            raise StorageUnavailable("Media storage is unreachable; try again shortly.") from exc

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (once per process)."""
        if self._bucket_ready:
            return
        with self._lock, self._reaching("bucket"):
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in ("403", "AccessDenied"):
                    # A least-privilege key may read and write objects without s3:ListBucket,
                    # which HEAD on the bucket needs: the bucket is there, carry on.
                    self._bucket_ready = True
                    return
                if code not in _MISSING:
                    raise
                extra: dict[str, Any] = {}
                if self.region != "us-east-1":
                    extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                with contextlib.suppress(self._client.exceptions.BucketAlreadyOwnedByYou):
                    self._client.create_bucket(Bucket=self.bucket, **extra)
                log.info("created bucket %s", self.bucket)
            self._bucket_ready = True

    def put(self, key: str, source: Path) -> None:
        name = self._key(key)
        # presigned links then answer with the file's own type, as local links do
        extra = {"ContentType": served_type(key)}
        self.ensure_bucket()
        try:
            with self._reaching(key):
                self._client.upload_file(str(source), self.bucket, name, ExtraArgs=extra)
        except FileNotFoundError:
            # The bucket went away after this process saw it: make it again, once.
            self._bucket_ready = False
            self.ensure_bucket()
            try:
                with self._reaching(key):
                    self._client.upload_file(str(source), self.bucket, name, ExtraArgs=extra)
            except FileNotFoundError as exc:
                raise StorageUnavailable("Media storage refused the upload.") from exc
        # Only once stored: a caller that retries still has the file.
        source.unlink(missing_ok=True)

    @contextlib.contextmanager
    def local_copy(self, key: str, work_dir: Path) -> Iterator[Path]:
        name = self._key(key)
        work_dir.mkdir(parents=True, exist_ok=True)
        target = work_dir / f"{uuid.uuid4().hex[:8]}-{PurePosixPath(key).name}"
        try:
            with self._reaching(key):
                self._client.download_file(self.bucket, name, str(target))
            yield target
        finally:
            target.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        name = self._key(key)
        # S3 answers 204 for a missing key, but NoSuchBucket before the bucket was ever made:
        # nothing to delete either way.
        with contextlib.suppress(FileNotFoundError), self._reaching(key):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def url(self, key: str, ttl_s: int) -> str:
        # Presigning is computed locally: no request to the store (but it needs credentials).
        with self._reaching(key):
            url: str = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=min(ttl_s, MAX_PRESIGN_S),
            )
        return url

    def upload_form(self, key: str, max_bytes: int, ttl_s: int) -> tuple[str, dict[str, str]]:
        """S3's presigned POST: the client sends its file straight to the bucket, at `key`
        only, at most `max_bytes`, until the policy expires."""
        self.ensure_bucket()
        with self._reaching(key):
            form: dict[str, Any] = self._client.generate_presigned_post(
                Bucket=self.bucket,
                Key=self._key(key),
                Conditions=[["content-length-range", 1, max_bytes]],
                ExpiresIn=min(ttl_s, MAX_PRESIGN_S),
            )
        return str(form["url"]), {str(k): str(v) for k, v in form["fields"].items()}

    def check(self) -> None:
        self._bucket_ready = False
        self.ensure_bucket()
