"""The fleet on object storage (real servers: the API, `vidmorph worker` processes on Celery over
a private Redis, PostgreSQL, and moto's S3 over HTTP): uploads and outputs live in S3 and come
back as presigned S3 URLs, whatever machine handled them; a worker with a data dir of its own
runs from S3 alone; an upload while S3 is down is a clean 503 that leaves no temp file; a task
rides out a short outage and fails clearly (credits released, callback sent) after a long one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx

from tests.fleet.conftest import wait_worker, worker_env
from tests.harness import LiveServer, start_server
from tests.receiver import Receiver
from tests.services import S3_ENV, Proc, RedisServer, S3Endpoint, wait_for
from tests.videos import make_video
from vidmorph.config import Settings

SLOW = "tests.engines.fixtures:slow"
EMAIL = "default@vidmorph.local"
RETRY_WARNING = "storage unreachable; trying again"


def s3_settings(
    make_settings: Callable[..., Settings], s3: S3Endpoint, **extra: object
) -> Settings:
    return make_settings(
        workers=0,
        redispatch_s=2.0,
        worker_heartbeat_s=0.5,
        moderation_classifier=False,
        storage_url=f"s3://fleet-{uuid.uuid4().hex[:10]}/media",
        s3_endpoint_url=s3.url,
        **extra,
    )


def other_machine(settings: Settings, data_dir: Path, **extra: object) -> dict[str, object]:
    """A worker on another machine: same database, broker and bucket; its own data dir."""
    assert data_dir != settings.data_dir
    return worker_env(settings, data_dir=data_dir, **extra)


def bucket_of(settings: Settings) -> str:
    return urlsplit(settings.storage_url).netloc


def s3_objects(s3: S3Endpoint, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, read with a plain boto3 client (not the code under test)."""
    client = boto3.client("s3", endpoint_url=s3.url, region_name=S3_ENV["AWS_DEFAULT_REGION"])
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


def assert_presigned_s3(url: str, s3: S3Endpoint, settings: Settings) -> str:
    """`url` is the store's own presigned link under the prefix; returns the object's key."""
    assert url.startswith(f"{s3.url}/{bucket_of(settings)}/media/1/"), url
    query = urlsplit(url).query
    assert "X-Amz-Signature=" in query and "X-Amz-Expires=" in query, url
    return urlsplit(url).path.split("/", 2)[2]


def credits_used(live: LiveServer) -> int:
    used: int = live.client.get(f"{live.api}/accounts/{EMAIL}").json()["numPlanCreditsUsed"]
    return used


def retry_warnings(worker: Proc) -> int:
    return worker.output().count(RETRY_WARNING)


def test_uploads_and_outputs_live_in_s3_and_any_process_serves_them(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    s3: S3Endpoint,
    spawn: Callable[..., Proc],
) -> None:
    settings = s3_settings(make_settings, s3, database_url=postgres_url, broker_url=broker.url)
    bucket = bucket_of(settings)
    worker_dir = tmp_path / "worker-machine"
    with start_server(settings) as live:
        worker = spawn("worker", **other_machine(settings, worker_dir))
        source = make_video(tmp_path / "street.mp4", seconds=1)
        asset = live.upload(source)

        # The upload went to S3, under the prefix, and nowhere on the API's disk.
        key = assert_presigned_s3(asset["url"], s3, settings)
        stored = s3_objects(s3, bucket)
        assert stored[key] == source.read_bytes()
        assert stored[assert_presigned_s3(asset["previewUrls"][0], s3, settings)][:2] == b"\xff\xd8"
        assert httpx.get(asset["url"]).content == source.read_bytes()
        assert files_under(settings.data_dir / "files") == []
        assert files_under(settings.data_dir / "tmp") == []

        # A worker whose disk has never seen the input runs the task from S3.
        wait_worker(live.ctx, "preview")
        resp = live.create({"assetId": asset["assetId"], "text_prompt": "night"})
        assert resp.status_code == 200, resp.text
        done = live.wait_task(resp.json()["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=60)
        assert done["status"] == "SUCCEEDED", (done, worker.output()[-3000:])
        artifact = done["artifacts"][0]
        out_key = assert_presigned_s3(artifact["url"], s3, settings)
        video = httpx.get(artifact["url"])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        stored = s3_objects(s3, bucket)
        assert stored[out_key] == video.content
        assert int(artifact["fileSize"]) == len(video.content)
        previews = [asset["previewUrls"][0], artifact["previewUrls"][0]]
        assert set(stored) == {
            key,
            out_key,
            *(assert_presigned_s3(u, s3, settings) for u in previews),
        }
        # The output is an asset like any other, in S3 too; no media stayed on either disk.
        as_asset = live.client.get(f"{live.api}/assets/{artifact['assetId']}").json()
        assert assert_presigned_s3(as_asset["url"], s3, settings) == out_key
        for data_dir in (settings.data_dir, worker_dir):
            assert files_under(data_dir / "files") == []
            assert files_under(data_dir / "tmp") == [], files_under(data_dir / "tmp")

    # Another API process, on a machine with an empty disk, hands out the same media.
    other = settings.model_copy(update={"data_dir": tmp_path / "another-api"})
    with start_server(other) as second:
        again = second.client.get(f"{second.api}/assets/{asset['assetId']}").json()
        assert httpx.get(again["url"]).content == source.read_bytes()
        task = second.client.get(f"{second.api}/tasks/{done['taskId']}").json()
        assert httpx.get(task["artifacts"][0]["url"]).content == video.content


def test_upload_while_storage_is_down_is_a_503_envelope_and_leaves_no_temp_file(
    tmp_path: Path, make_settings: Callable[..., Settings], s3: S3Endpoint
) -> None:
    settings = s3_settings(make_settings, s3)
    source = make_video(tmp_path / "clip.mp4", seconds=1)
    with start_server(settings) as live:

        def upload() -> httpx.Response:
            return live.client.post(
                f"{live.api}/assets/",
                params={"name": "clip"},
                content=source.read_bytes(),
                headers={"Content-Type": "video/mp4"},
            )

        def assert_refused() -> None:
            resp = upload()
            assert resp.status_code == 503, resp.text
            body = resp.json()
            assert set(body) == {"error", "code"} and body["code"] == 503
            assert "storage" in body["error"].lower()
            assert resp.headers.get("retry-after")
            leftovers = files_under(settings.data_dir / "tmp")
            assert leftovers == [], f"temp files left behind: {leftovers}"

        # Down before this process ever reached the bucket...
        s3.stop()
        try:
            assert_refused()
        finally:
            s3.start()
        first = upload()
        assert first.status_code == 200, first.text
        # ...and down after it had.
        s3.stop()
        try:
            assert_refused()
        finally:
            s3.start()
        back = upload()
        assert back.status_code == 200, back.text
        assert httpx.get(back.json()["url"]).content == source.read_bytes()
        assert files_under(settings.data_dir / "tmp") == []
        # The refused uploads left no asset behind either.
        listed = {a["assetId"] for a in live.client.get(f"{live.api}/assets/").json()}
        assert listed == {first.json()["assetId"], back.json()["assetId"]}


def test_task_rides_out_storage_outages_shorter_than_the_retry_window(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    s3: S3Endpoint,
    spawn: Callable[..., Proc],
) -> None:
    settings = s3_settings(
        make_settings, s3, database_url=postgres_url, broker_url=broker.url, engine=SLOW
    )
    with start_server(settings) as live:
        worker = spawn(
            "worker", **other_machine(settings, tmp_path / "worker-machine", storage_retry_s=60)
        )
        # 2 s at 24 fps: the slow engine works ~2 s, while the output is not stored yet.
        asset = live.upload_video(tmp_path, seconds=2)
        body = {"assetId": asset["assetId"], "text_prompt": "night"}
        wait_worker(live.ctx, SLOW)
        # A first task with S3 up: the worker has met the bucket, so outage 2 below hits the
        # upload itself (which must keep the output file for the next try).
        first = live.create({**body, "seconds": 1}).json()
        warm = live.wait_task(first["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=30)
        assert warm["status"] == "SUCCEEDED", (warm, worker.output()[-3000:])

        # Outage 1: S3 goes away before the worker fetches the input.
        s3.stop()
        resp = live.create(body)
        assert resp.status_code == 200, resp.text
        task_id = resp.json()["taskId"]
        try:
            wait_for(lambda: retry_warnings(worker) >= 2, 30, "the input fetch to be retried")
            assert live.wait_task(task_id, {"RUNNING"}, timeout_s=1)["status"] == "RUNNING"
        finally:
            s3.start()

        # Outage 2: S3 goes away while the engine runs, so storing the output meets it.
        def in_engine() -> bool:
            body: dict[str, Any] = live.client.get(f"{live.api}/tasks/{task_id}").json()
            return str(body.get("progressText") or "").startswith("Engine")

        wait_for(in_engine, 30, "the engine phase", step_s=0.05)
        before = retry_warnings(worker)
        s3.stop()
        try:
            wait_for(lambda: retry_warnings(worker) > before, 30, "the output store to be retried")
            assert live.wait_task(task_id, {"RUNNING"}, timeout_s=1)["status"] == "RUNNING"
        finally:
            s3.start()

        done = live.wait_task(task_id, {"SUCCEEDED", "FAILED"}, timeout_s=30)
        assert done["status"] == "SUCCEEDED", (done, worker.output()[-3000:])
        video = httpx.get(done["artifacts"][0]["url"])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        assert files_under(tmp_path / "worker-machine" / "tmp") == []


def test_task_fails_clearly_when_storage_stays_down_past_the_retry_window(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    s3: S3Endpoint,
    spawn: Callable[..., Proc],
) -> None:
    settings = s3_settings(make_settings, s3, database_url=postgres_url, broker_url=broker.url)
    worker_dir = tmp_path / "worker-machine"
    with start_server(settings) as live, Receiver() as hook:
        worker = spawn("worker", **other_machine(settings, worker_dir, storage_retry_s=2))
        asset = live.upload_video(tmp_path, seconds=1)
        wait_worker(live.ctx, "preview")
        assert credits_used(live) == 0

        s3.stop()
        resp = live.create(
            {"assetId": asset["assetId"], "text_prompt": "night", "replyUrl": hook.url}
        )
        assert resp.status_code == 200, resp.text
        task_id = resp.json()["taskId"]
        assert credits_used(live) > 0  # reserved at admission
        done = live.wait_task(task_id, {"SUCCEEDED", "FAILED"}, timeout_s=40)
        assert done["status"] == "FAILED", (done, worker.output()[-3000:])
        error = done["error"]
        assert error["reason"] == "INTERNAL.STORAGE_UNAVAILABLE"
        message = error["errorMessage"]
        assert "storage" in message.lower() and "unreachable" in message.lower(), message
        assert message == error["message"]
        assert credits_used(live) == 0, "a task failed by storage must give its credits back"

        def failed_callback(reqs: list[Any]) -> bool:
            return any(
                r.json()["taskId"] == task_id and r.json()["status"] == "FAILED" for r in reqs
            )

        assert hook.wait_for(failed_callback, timeout_s=30), [
            r.json()["status"] for r in hook.requests
        ]
        sent = [r.json() for r in hook.requests if r.json()["status"] == "FAILED"][-1]
        assert sent["error"] == error
        assert files_under(worker_dir / "tmp") == []

        # The worker lived through it: with the store back, the next task runs.
        s3.start()
        resp = live.create({"assetId": asset["assetId"], "text_prompt": "night"})
        assert resp.status_code == 200, resp.text
        again = live.wait_task(resp.json()["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=60)
        assert again["status"] == "SUCCEEDED", (again, worker.output()[-3000:])
