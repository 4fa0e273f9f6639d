"""One BlobStorage contract, run against LocalStorage (behind a real server, which serves its
signed links) and S3Storage (against moto's S3 over real HTTP on loopback): put takes the file,
local_copy reads it back, missing keys, deletes, fetchable and expiring URLs, keys that try to
leave their place, and a store that cannot be reached. Then what only S3 has: a bucket made on
first use, the prefix, and presigned URLs whose expiry is part of what is signed."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import httpx
import pytest

from tests.harness import start_server
from tests.services import S3_ENV, S3Endpoint, s3_endpoint
from vidmorph.config import Settings
from vidmorph.errors import StorageUnavailable
from vidmorph.storage.base import BlobStorage
from vidmorph.storage.local import LocalStorage
from vidmorph.storage.s3 import MAX_PRESIGN_S, S3Storage

KEY = "1/0123abcd/video.mp4"
BAD_KEYS = ["../escape.mp4", "1/../../escape.mp4", "/etc/escape.mp4", "..", ""]


@dataclass
class Backend:
    """A storage under test, and the means to take its store away and bring it back."""

    name: str
    storage: BlobStorage
    take_down: Callable[[], object]
    bring_back: Callable[[], object]


def s3_client(endpoint: S3Endpoint) -> Any:
    """A plain boto3 client, to look at the bucket from outside the code under test."""
    return boto3.client("s3", endpoint_url=endpoint.url, region_name=S3_ENV["AWS_DEFAULT_REGION"])


def new_bucket() -> str:
    return f"vidmorph-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def endpoint(aws_env: None) -> Iterator[S3Endpoint]:
    with s3_endpoint() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def backend(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Iterator[Backend]:
    if request.param == "local":
        settings = make_settings(workers=0, moderation_classifier=False)
        with start_server(settings) as live:
            storage = live.ctx.storage
            assert isinstance(storage, LocalStorage)
            root, away = storage.root, storage.root.with_name("files-away")
            yield Backend("local", storage, lambda: root.rename(away), lambda: away.rename(root))
        return
    server: S3Endpoint = request.getfixturevalue("endpoint")
    # A bucket that does not exist yet: the storage makes it on first use.
    storage_url = f"s3://{new_bucket()}/media/v1"
    yield Backend("s3", S3Storage(storage_url, server.url), server.stop, server.start)


def source_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"src-{uuid.uuid4().hex[:6]}.bin"
    path.write_bytes(data)
    return path


def test_put_takes_the_file_and_local_copy_reads_its_bytes(
    backend: Backend, tmp_path: Path
) -> None:
    data = b"\x00video bytes\xff" * 5000
    source = source_file(tmp_path, data)
    backend.storage.put(KEY, source)
    assert not source.exists(), "put must take the file away from where it was"

    work = tmp_path / "work"
    with backend.storage.local_copy(KEY, work) as copy:
        assert copy.is_file() and copy.read_bytes() == data
    if backend.name == "s3":
        # A copy of a remote blob lives only for the `with`.
        assert not copy.exists() and list(work.iterdir()) == []
    else:
        # Local blobs are read in place, and stay.
        assert copy.read_bytes() == data

    # A second put under the same key replaces the bytes.
    backend.storage.put(KEY, source_file(tmp_path, b"second"))
    with backend.storage.local_copy(KEY, work) as copy:
        assert copy.read_bytes() == b"second"


def test_local_copy_is_removed_even_when_the_with_body_fails(
    backend: Backend, tmp_path: Path
) -> None:
    backend.storage.put(KEY, source_file(tmp_path, b"abc"))
    work = tmp_path / "work"
    with pytest.raises(RuntimeError), backend.storage.local_copy(KEY, work) as copy:
        raise RuntimeError("the reader failed")
    if backend.name == "s3":
        assert not copy.exists() and list(work.iterdir()) == []
    with backend.storage.local_copy(KEY, work) as again:
        assert again.read_bytes() == b"abc"


def test_missing_key_is_file_not_found_and_leaves_no_partial_copy(
    backend: Backend, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    backend.storage.put(KEY, source_file(tmp_path, b"abc"))  # the bucket exists
    with pytest.raises(FileNotFoundError), backend.storage.local_copy("1/nope/video.mp4", work):
        pass
    assert not work.exists() or list(work.iterdir()) == []


def test_delete_removes_the_blob_and_a_missing_blob_is_not_an_error(
    backend: Backend, tmp_path: Path
) -> None:
    # Before anything was ever stored (for S3: not even the bucket exists yet).
    backend.storage.delete("1/never/video.mp4")
    backend.storage.put(KEY, source_file(tmp_path, b"abc"))
    backend.storage.put("1/other/video.mp4", source_file(tmp_path, b"other"))
    backend.storage.delete(KEY)
    with pytest.raises(FileNotFoundError), backend.storage.local_copy(KEY, tmp_path / "w"):
        pass
    backend.storage.delete(KEY)  # twice is fine
    # Only that blob went.
    with backend.storage.local_copy("1/other/video.mp4", tmp_path / "w") as copy:
        assert copy.read_bytes() == b"other"


def test_url_downloads_the_bytes_with_plain_http(backend: Backend, tmp_path: Path) -> None:
    data = b"\x00\x01downloadable" * 1000
    backend.storage.put(KEY, source_file(tmp_path, data))
    url = backend.storage.url(KEY, 600)
    resp = httpx.get(url)  # no token, no credentials: the URL is the permission
    assert resp.status_code == 200, resp.text
    assert resp.content == data


def test_links_answer_with_the_stored_files_own_type(backend: Backend, tmp_path: Path) -> None:
    for name, served in (
        ("video.mp4", "video/mp4"),
        ("video.webm", "video/webm"),
        ("audio.webm", "audio/webm"),
        ("video.mkv", "video/x-matroska"),
        ("preview.jpg", "image/jpeg"),
        ("image.webp", "image/webp"),
        ("audio.flac", "audio/flac"),
    ):
        key = f"1/0123abcd/{name}"
        backend.storage.put(key, source_file(tmp_path, b"bytes"))
        got = httpx.get(backend.storage.url(key, 600))
        assert got.status_code == 200 and got.headers["content-type"] == served, name


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_keys_that_leave_their_place_are_refused(
    backend: Backend, tmp_path: Path, bad: str
) -> None:
    source = source_file(tmp_path, b"abc")
    with pytest.raises(FileNotFoundError):
        backend.storage.put(bad, source)
    assert source.exists(), "a refused put must not take the file"
    with pytest.raises(FileNotFoundError), backend.storage.local_copy(bad, tmp_path / "w"):
        pass
    with pytest.raises(FileNotFoundError):
        backend.storage.delete(bad)
    with pytest.raises(FileNotFoundError):
        backend.storage.url(bad, 60)
    if isinstance(backend.storage, LocalStorage):
        assert not list(backend.storage.root.parent.glob("escape*"))


def test_check_passes_and_raises_storage_unavailable_while_the_store_is_away(
    backend: Backend, tmp_path: Path
) -> None:
    backend.storage.check()
    backend.take_down()
    try:
        with pytest.raises(StorageUnavailable):
            backend.storage.check()
    finally:
        backend.bring_back()
    backend.storage.check()
    backend.storage.put(KEY, source_file(tmp_path, b"back"))
    with backend.storage.local_copy(KEY, tmp_path / "w") as copy:
        assert copy.read_bytes() == b"back"


# --- local only ------------------------------------------------------------------------------


def test_local_url_binds_its_key_and_stops_working_after_its_ttl(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0, moderation_classifier=False)) as live:
        storage = live.ctx.storage
        storage.put(KEY, source_file(tmp_path, b"abc"))
        storage.put("1/other/video.mp4", source_file(tmp_path, b"other"))
        # Expiry is in whole seconds: a ttl of 3 is at least 2 s of validity.
        url = storage.url(KEY, 3)
        assert httpx.get(url).content == b"abc"
        # The signature names this blob only: on another key it is refused.
        forged = url.replace("0123abcd", "other")
        assert forged != url and httpx.get(forged).status_code == 404
        time.sleep(4.1)
        resp = httpx.get(url)
        assert resp.status_code == 404 and resp.json()["code"] == 404


# --- S3 only ---------------------------------------------------------------------------------


def test_s3_every_call_raises_storage_unavailable_while_the_endpoint_is_down(
    endpoint: S3Endpoint, tmp_path: Path
) -> None:
    storage = S3Storage(f"s3://{new_bucket()}/media", endpoint.url)
    storage.put(KEY, source_file(tmp_path, b"abc"))
    endpoint.stop()
    try:
        source = source_file(tmp_path, b"def")
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            storage.put("1/new/video.mp4", source)
        # Fails fast (no long hang on a refused connection), and keeps the file for a retry.
        assert time.monotonic() - started < 15
        assert source.exists()
        with pytest.raises(StorageUnavailable), storage.local_copy(KEY, tmp_path / "w"):
            pass
        assert list((tmp_path / "w").iterdir()) == []
        with pytest.raises(StorageUnavailable):
            storage.delete(KEY)
        with pytest.raises(StorageUnavailable):
            storage.check()
        # Presigning needs no request to the store.
        assert storage.url(KEY, 60).startswith(endpoint.url)
    finally:
        endpoint.start()
    storage.put("1/new/video.mp4", source)
    assert not source.exists()
    with storage.local_copy("1/new/video.mp4", tmp_path / "w") as copy:
        assert copy.read_bytes() == b"def"


@pytest.mark.parametrize("prefix", ["", "media", "deep/er/prefix"])
def test_s3_makes_a_missing_bucket_and_stores_under_the_prefix(
    endpoint: S3Endpoint, tmp_path: Path, prefix: str
) -> None:
    client = s3_client(endpoint)
    bucket = new_bucket()
    assert bucket not in {b["Name"] for b in client.list_buckets()["Buckets"]}
    storage = S3Storage(f"s3://{bucket}/{prefix}", endpoint.url)
    storage.put(KEY, source_file(tmp_path, b"abc"))
    storage.put("2/f00d/preview.jpg", source_file(tmp_path, b"jpg"))
    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
    names = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    lead = f"{prefix}/" if prefix else ""
    assert names == [f"{lead}1/0123abcd/video.mp4", f"{lead}2/f00d/preview.jpg"]
    got = client.get_object(Bucket=bucket, Key=f"{lead}{KEY}")["Body"].read()
    assert got == b"abc"
    storage.delete(KEY)
    names = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert names == [f"{lead}2/f00d/preview.jpg"]


def test_s3_prefixes_in_one_bucket_do_not_see_each_other(
    endpoint: S3Endpoint, tmp_path: Path
) -> None:
    bucket = new_bucket()
    blue = S3Storage(f"s3://{bucket}/blue", endpoint.url)
    green = S3Storage(f"s3://{bucket}/green", endpoint.url)
    blue.put(KEY, source_file(tmp_path, b"blue"))
    with pytest.raises(FileNotFoundError), green.local_copy(KEY, tmp_path / "w"):
        pass
    green.put(KEY, source_file(tmp_path, b"green"))
    green.delete(KEY)
    with blue.local_copy(KEY, tmp_path / "w") as copy:
        assert copy.read_bytes() == b"blue"


def test_s3_bucket_that_exists_already_is_used_as_it_is(
    endpoint: S3Endpoint, tmp_path: Path
) -> None:
    client = s3_client(endpoint)
    bucket = new_bucket()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="media/1/old/video.mp4", Body=b"old")
    storage = S3Storage(f"s3://{bucket}/media", endpoint.url)
    storage.check()
    with storage.local_copy("1/old/video.mp4", tmp_path / "w") as copy:
        assert copy.read_bytes() == b"old"


def test_s3_put_makes_the_bucket_again_when_it_was_removed_under_it(
    endpoint: S3Endpoint, tmp_path: Path
) -> None:
    client = s3_client(endpoint)
    bucket = new_bucket()
    storage = S3Storage(f"s3://{bucket}/media", endpoint.url)
    storage.put(KEY, source_file(tmp_path, b"abc"))
    client.delete_object(Bucket=bucket, Key=f"media/{KEY}")
    client.delete_bucket(Bucket=bucket)
    storage.put(KEY, source_file(tmp_path, b"again"))
    assert client.get_object(Bucket=bucket, Key=f"media/{KEY}")["Body"].read() == b"again"


def _sigv4_query_signature(url: str, secret: str) -> tuple[str, str]:
    """(the URL's X-Amz-Signature, the one SigV4 gives for everything else in the URL),
    worked out from the AWS specification rather than by botocore."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)["X-Amz-Signature"]
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(q for q in query if q[0] != "X-Amz-Signature")
    )
    canonical = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    params = dict(query)
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    day, region, service, _ = scope.split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return given, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_s3_presigned_urls_carry_a_signed_expiry_of_the_ttl(
    endpoint: S3Endpoint, tmp_path: Path
) -> None:
    """moto does not refuse expired presigned URLs (real S3, MinIO and R2 answer 403), so this
    checks what they go by: X-Amz-Date is now, X-Amz-Expires is the ttl (capped at SigV4's
    week), and both are inside a valid signature, so nobody can stretch them."""
    storage = S3Storage(f"s3://{new_bucket()}/media", endpoint.url)
    storage.put(KEY, source_file(tmp_path, b"abc"))
    for ttl, expected in ((5, 5), (3600, 3600), (30 * 24 * 3600, MAX_PRESIGN_S)):
        url = storage.url(KEY, ttl)
        params = dict(parse_qsl(urlsplit(url).query))
        assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert int(params["X-Amz-Expires"]) == expected
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert abs(signed_at.timestamp() - time.time()) < 60
        assert params["X-Amz-SignedHeaders"] == "host"
        given, computed = _sigv4_query_signature(url, S3_ENV["AWS_SECRET_ACCESS_KEY"])
        assert given == computed
        stretched = url.replace(f"X-Amz-Expires={expected}", "X-Amz-Expires=604800")
        if expected != 604800:
            assert _sigv4_query_signature(stretched, S3_ENV["AWS_SECRET_ACCESS_KEY"])[1] != given
        assert httpx.get(url).content == b"abc"
