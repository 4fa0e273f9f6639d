"""Runway API uploads: the form target is the credential (signed, expiring, one use), both as
Vidmorph's own endpoint and as S3's presigned POST (moto's S3 over HTTP), with the real SDK."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
from runwayml import RunwayML

from tests.harness import LiveServer, start_server
from tests.services import S3Endpoint
from tests.videos import make_video
from vidmorph.config import Settings

VERSION = {"X-Runway-Version": "2024-11-06"}


def ask(live: LiveServer, filename: str = "clip.mp4") -> dict[str, Any]:
    resp = live.client.post(
        f"{live.base_url}/v1/uploads",
        json={"filename": filename, "type": "ephemeral"},
        headers=VERSION,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def post_form(target: dict[str, Any], payload: bytes, name: str = "file") -> httpx.Response:
    files = {name: ("clip.mp4", payload, "video/mp4")}
    return httpx.post(target["uploadUrl"], data=target["fields"], files=files, timeout=30)


def test_the_signed_target_takes_one_file_once_without_a_token(
    server: LiveServer, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=0.5, size=(160, 96)).read_bytes()
    target = ask(server)
    assert target["runwayUri"].startswith("runway://upload/") and target["fields"] == {}
    forged = httpx.URL(target["uploadUrl"]).copy_merge_params({"sig": "0" * 64})
    refused = httpx.post(forged, files={"file": ("c.mp4", clip, "video/mp4")})
    assert refused.status_code == 404
    assert refused.json() == {"error": "This upload link has expired or is not valid."}
    assert post_form(target, clip, name="video").status_code == 400  # no part named file
    for headers, body in (
        ({"Content-Type": "multipart/form-data"}, b"--x\r\n"),  # no boundary
        ({"Content-Type": "multipart/form-data; boundary=abc"}, b"garbage, not a form"),
        ({"Content-Type": "video/mp4"}, clip),
    ):
        wrong = httpx.post(target["uploadUrl"], content=body, headers=headers)
        assert wrong.status_code == 400 and set(wrong.json()) == {"error"}, wrong.text
    assert post_form(target, b"not a video").json()["error"].startswith("The file")
    assert post_form(target, clip).status_code == 204  # no Authorization, no version header
    assert post_form(target, clip).status_code == 404  # used
    (asset,) = server.client.get(f"{server.api}/assets/").json()
    assert asset["name"] == "clip" and asset["metadata"]["width"] == 160


def test_a_filename_with_control_characters_is_refused(server: LiveServer) -> None:
    for filename in ("a\x00.mp4", "a\r\nb.mp4", "\x1b[31m.mp4"):
        resp = server.client.post(
            f"{server.base_url}/v1/uploads",
            json={"filename": filename, "type": "ephemeral"},
            headers=VERSION,
        )
        assert resp.status_code == 400, resp.text
        assert "control characters" in resp.json()["error"]
    assert ask(server, "ünïcode clip (1).mp4")["runwayUri"].startswith("runway://upload/")


def test_an_expired_target_and_an_oversized_file_are_refused(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(max_upload_bytes=50_000)) as live:
        target = ask(live)
        url = httpx.URL(target["uploadUrl"])
        stale = url.copy_merge_params({"expires": "1000"})
        assert httpx.post(stale, files={"file": ("c.mp4", b"x", "video/mp4")}).status_code == 404
        big = post_form(target, b"\0" * 200_000)
        assert big.status_code == 413
        assert list((live.ctx.settings.data_dir).rglob("upload-*")) == []


def test_on_s3_the_sdk_posts_straight_to_the_bucket_by_presigned_post(
    make_settings: Callable[..., Settings], s3: S3Endpoint, tmp_path: Path
) -> None:
    bucket = f"uploads-{uuid.uuid4().hex[:10]}"
    settings = make_settings(storage_url=f"s3://{bucket}/media", s3_endpoint_url=s3.url)
    with start_server(settings) as live:
        target = ask(live)
        assert target["uploadUrl"].startswith(s3.url)
        assert {"key", "policy", "x-amz-signature"} <= set(target["fields"])
        client = RunwayML(api_key=live.token, base_url=live.base_url, max_retries=0)
        clip = make_video(tmp_path / "street.mp4", seconds=0.5, size=(160, 96))
        uri = client.uploads.create_ephemeral(file=clip).uri
        s3_client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
        keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert any(k.startswith("media/uploads/1/") and k.endswith("street.mp4") for k in keys)
        task = client.video_to_video.create(model="gen4_aleph", prompt_text="rain", video_uri=uri)
        done = task.wait_for_task_output(timeout=120)
        assert done.status == "SUCCEEDED" and done.output[0].startswith(s3.url)
        keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert not any("/uploads/" in k for k in keys)  # probed into an asset, then dropped
