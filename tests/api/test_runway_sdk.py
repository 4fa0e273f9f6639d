"""Runway's own API through the official `runwayml` Python SDK, unchanged but for base_url and
api_key, against a real server: its documented flow (upload, create, wait, fetch, cancel,
delete), its exception classes, THROTTLED past maxJobs, and the same tasks seen from useapi's
surface."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import runwayml
from runwayml import RunwayML, TaskFailedError
from sqlalchemy import func, select, update

from tests.harness import LiveServer, start_server
from tests.receiver import serve_files
from tests.videos import make_image, make_video, probe_output
from vidmorph.api.runway_schemas import ASPECT_RATIOS
from vidmorph.config import Settings
from vidmorph.domain.clock import utcnow
from vidmorph.service.accounts import create_token
from vidmorph.service.framing import FRAME_SIZES
from vidmorph.store.tables import assets as assets_table
from vidmorph.store.tables import uploads as uploads_table

SLOW = "tests.engines.fixtures:slow"


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with start_server(make_settings(engine=SLOW, recover_interval_s=0.3)) as server:
        yield server


def sdk(live: LiveServer, key: str | None = None) -> RunwayML:
    return RunwayML(api_key=key or live.token, base_url=live.base_url, max_retries=0)


def wait(client: RunwayML, task_id: str, statuses: set[str], timeout_s: float = 60) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        task = client.tasks.retrieve(task_id)
        if task.status in statuses:
            return task
        assert time.monotonic() < deadline, f"{task_id} still {task.status}"
        time.sleep(0.2)


def test_the_documented_flow_upload_create_wait_and_download(
    live: LiveServer, tmp_path: Path
) -> None:
    client = sdk(live)
    clip = make_video(tmp_path / "street.mp4", seconds=1, size=(320, 192), audio=True)
    uri = client.uploads.create_ephemeral(file=clip).uri
    assert uri.startswith("runway://")
    created = client.video_to_video.create(
        model="gen4_aleph", prompt_text="the same street at night", video_uri=uri, seed=7
    )
    assert created.estimated_cost.credits == 15  # what the SDK's type requires: 1 s of Aleph
    done = created.wait_for_task_output(timeout=120)
    assert done.status == "SUCCEEDED"
    (url,) = done.output
    (tmp_path / "out.mp4").write_bytes(httpx.get(url).content)
    info = probe_output(tmp_path / "out.mp4")
    # gen4_aleph keeps the input's framing: 320x192 (5:3) is nearest 16:9 of Runway's ratios
    assert (info["width"], info["height"], info["codec"]) == (1280, 720, "h264")
    # One task store, two wire formats: useapi's surface shows the same task.
    (seen,) = live.client.get(f"{live.api}/tasks/").json()
    assert seen["id"] == created.id and seen["taskType"] == "gen4_aleph"
    assert seen["options"]["seed"] == 7 and seen["status"] == "SUCCEEDED"
    assert client.tasks.retrieve(created.id).cost.credits == 15  # 1 s of Aleph
    client.tasks.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve(created.id)


def test_aleph2_takes_a_data_uri_and_a_9_16_frame(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    clip = make_video(tmp_path / "phone.mp4", seconds=0.5, size=(180, 320))
    data_uri = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
    created = client.video_to_video.create(
        model="aleph2", video_uri=data_uri, target_aspect_ratio="9:16", seed=3
    )
    done = wait(client, created.id, {"SUCCEEDED", "FAILED"})
    assert done.status == "SUCCEEDED", done
    (tmp_path / "out.mp4").write_bytes(httpx.get(done.output[0]).content)
    info = probe_output(tmp_path / "out.mp4")
    assert (info["width"], info["height"]) == (720, 1280)  # 9:16 exactly
    square = client.video_to_video.create(
        model="aleph2", video_uri=data_uri, target_aspect_ratio="1:1", seed=3
    )
    assert wait(client, square.id, {"SUCCEEDED", "FAILED"}).status == "SUCCEEDED"
    (url,) = client.tasks.retrieve(square.id).output
    (tmp_path / "square.mp4").write_bytes(httpx.get(url).content)
    info = probe_output(tmp_path / "square.mp4")
    assert (info["width"], info["height"]) == (960, 960)
    # no ratio asked: the phone's own 9:16, not a landscape crop of it
    upright = client.video_to_video.create(model="gen4_aleph", prompt_text="x", video_uri=data_uri)
    assert wait(client, upright.id, {"SUCCEEDED", "FAILED"}).status == "SUCCEEDED"
    (url,) = client.tasks.retrieve(upright.id).output
    (tmp_path / "upright.mp4").write_bytes(httpx.get(url).content)
    info = probe_output(tmp_path / "upright.mp4")
    assert (info["width"], info["height"]) == (720, 1280)


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_each_target_aspect_ratio_has_a_frame_of_its_shape(ratio: str) -> None:
    width, height = FRAME_SIZES[ratio]
    across, down = (int(n) for n in ratio.split(":"))
    assert width * down == height * across  # exactly the ratio asked for
    assert width % 16 == 0 and height % 16 == 0  # what the engines' VAEs and the codec take
    assert 0.75e6 <= width * height <= 1.1e6  # about Runway's own 1280x720


def test_a_video_url_is_fetched_under_the_callback_guard(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    make_video(tmp_path / "hosted.mp4", seconds=0.5, size=(160, 96))
    with serve_files(tmp_path) as base:
        created = client.video_to_video.create(
            model="gen4_aleph", prompt_text="snow", video_uri=f"{base}/hosted.mp4"
        )
        with pytest.raises(runwayml.BadRequestError, match="404"):
            client.video_to_video.create(
                model="gen4_aleph", prompt_text="snow", video_uri=f"{base}/missing.mp4"
            )
    assert wait(client, created.id, {"SUCCEEDED"}).status == "SUCCEEDED"


def test_each_uri_must_be_the_kind_of_media_its_field_takes(
    live: LiveServer, tmp_path: Path
) -> None:
    """An image as videoUri, a video as a reference: a 400 naming the field, nothing stored,
    whichever way the URI came (fetched, data URI, runway:// upload)."""
    client = sdk(live)
    clip = make_video(tmp_path / "clip.mp4", seconds=0.3, size=(96, 64))
    picture = make_image(tmp_path / "still.png", size=(96, 64))
    # A video named as a picture: the probe finds it out.
    (tmp_path / "disguised.png").write_bytes(clip.read_bytes())
    uploaded_picture = client.uploads.create_ephemeral(file=picture).uri
    video_data = "data:video/mp4;base64," + base64.b64encode(clip.read_bytes()).decode()
    picture_data = "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()

    def count_assets() -> int:  # uploads and sources; a task's output is an asset too
        query = select(func.count()).where(assets_table.c.task_uuid.is_(None))
        with live.ctx.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    before = count_assets()
    with serve_files(tmp_path) as base:
        refused = [
            ("videoUri", {"video_uri": f"{base}/still.png"}),
            ("videoUri", {"video_uri": picture_data}),
            ("videoUri", {"video_uri": uploaded_picture}),
            (
                "references",
                {
                    "video_uri": video_data,
                    "references": [{"type": "image", "uri": f"{base}/clip.mp4"}],
                },
            ),
            (
                "references",
                {"video_uri": video_data, "references": [{"type": "image", "uri": video_data}]},
            ),
            (
                "references",
                {
                    "video_uri": video_data,
                    "references": [{"type": "image", "uri": f"{base}/disguised.png"}],
                },
            ),
        ]
        for field, args in refused:
            with pytest.raises(runwayml.BadRequestError) as bad:
                client.video_to_video.create(model="gen4_aleph", prompt_text="x", **args)
            message = bad.value.body["error"]
            assert message.startswith(f"{field}: "), (args, message)
            assert "user:" not in message and "asset:" not in message, message
        assert count_assets() == before
        created = client.video_to_video.create(
            model="gen4_aleph",
            prompt_text="x",
            video_uri=f"{base}/clip.mp4",
            references=[{"type": "image", "uri": f"{base}/still.png"}],
        )
    # The task's video is kept; its reference, checked and never used, is not.
    assert count_assets() == before + 1
    assert list(live.ctx.tmp_dir.glob("source-*")) == []
    assert wait(client, created.id, {"SUCCEEDED"}).status == "SUCCEEDED"


def test_errors_are_the_sdks_own_exceptions(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    clip = make_video(tmp_path / "in.mp4", seconds=0.5, size=(160, 96))
    uri = client.uploads.create_ephemeral(file=clip).uri
    with pytest.raises(runwayml.BadRequestError) as bad_model:
        client.video_to_video.create(model="seedance2", prompt_text="x", video_uri=uri)
    assert bad_model.value.body == {
        "error": "model: must be one of gen4_aleph, aleph2 on this server."
    }
    with pytest.raises(runwayml.BadRequestError, match="promptText"):
        client.video_to_video.create(model="gen4_aleph", prompt_text="x" * 1001, video_uri=uri)
    # Runway counts UTF-16 code units: 500 emoji outside the BMP are 1000, 501 are 1002.
    with pytest.raises(runwayml.BadRequestError, match="UTF-16"):
        client.video_to_video.create(model="gen4_aleph", prompt_text="🎬" * 501, video_uri=uri)
    with pytest.raises(runwayml.BadRequestError, match="white space"):
        client.video_to_video.create(model="aleph2", prompt_text="   ", video_uri=uri)
    with pytest.raises(runwayml.BadRequestError, match="keyframes"):
        client.video_to_video.create(
            model="aleph2", video_uri=uri, keyframes=[{"uri": uri, "seconds": 0.1}]
        )
    with pytest.raises(runwayml.BadRequestError, match="no upload"):
        client.video_to_video.create(
            model="gen4_aleph", prompt_text="x", video_uri="runway://upload/nope"
        )
    with pytest.raises(runwayml.AuthenticationError):
        sdk(live, "user:1-wrong").organization.retrieve()
    # Another user's task is not found; so is a made-up one.
    mine = client.video_to_video.create(model="gen4_aleph", prompt_text="rain", video_uri=uri)
    _, other_key = create_token(live.ctx)
    with pytest.raises(runwayml.NotFoundError):
        sdk(live, other_key).tasks.retrieve(mine.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve("00000000-0000-0000-0000-000000000000")
    # The version header is required, and errors are Runway's shape, not useapi's.
    raw = httpx.get(
        f"{live.base_url}/v1/organization", headers={"Authorization": f"Bearer {live.token}"}
    )
    assert raw.status_code == 400
    assert raw.json() == {
        "error": "The X-Runway-Version header is missing; this server speaks 2024-11-06."
    }


def test_a_flagged_prompt_fails_with_runways_safety_code(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=0.5)).uri
    created = client.video_to_video.create(
        model="gen4_aleph", prompt_text="graphic child porn scene", video_uri=uri
    )
    with pytest.raises(TaskFailedError) as failed:
        created.wait_for_task_output(timeout=60)
    details = failed.value.task_details
    assert details.failure_code == "SAFETY.INPUT.TEXT" and details.failure


def test_past_max_jobs_a_task_waits_throttled_then_runs(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    email = live.client.get(f"{live.api}/features/").json()["email"]
    assert live.client.post(f"{live.api}/accounts/{email}", json={"maxJobs": 1}).status_code == 200
    uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=2)).uri
    first = client.video_to_video.create(model="gen4_aleph", prompt_text="night", video_uri=uri)
    second = client.video_to_video.create(model="gen4_aleph", prompt_text="dusk", video_uri=uri)
    assert client.tasks.retrieve(second.id).status == "THROTTLED"
    org = client.organization.retrieve()
    assert org.tier.models["gen4_aleph"].max_concurrent_generations == 1
    assert org.usage.models["gen4_aleph"].daily_generations == 2
    # useapi's surface answers 429 for the same account while it is full.
    asset = live.upload_video(tmp_path, seconds=1)
    busy = live.create({"assetId": asset["assetId"], "text_prompt": "x"})
    assert busy.status_code == 429
    assert wait(client, first.id, {"SUCCEEDED"}).status == "SUCCEEDED"
    assert wait(client, second.id, {"RUNNING", "SUCCEEDED"}).status in ("RUNNING", "SUCCEEDED")
    assert wait(client, second.id, {"SUCCEEDED"}).status == "SUCCEEDED"


def test_a_running_task_is_cancelled_by_delete(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=5)).uri
    created = client.video_to_video.create(model="gen4_aleph", prompt_text="night", video_uri=uri)
    wait(client, created.id, {"RUNNING"})
    client.tasks.delete(created.id)
    cancelled = client.tasks.retrieve(created.id)
    assert cancelled.status == "CANCELLED" and cancelled.cost.credits == 0
    assert client.organization.retrieve().credit_balance == 100_000  # the reservation went back


def test_private_urls_are_refused_unless_allowed_and_versions_are_checked(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(callback_allow_private=False)) as live:
        client = sdk(live)
        https = live.base_url.replace("http://", "https://")
        with pytest.raises(runwayml.BadRequestError, match="private or loopback"):
            client.video_to_video.create(
                model="gen4_aleph", prompt_text="x", video_uri=f"{https}/healthz"
            )
        with pytest.raises(runwayml.BadRequestError, match="must be an https URL"):
            client.video_to_video.create(
                model="gen4_aleph", prompt_text="x", video_uri=f"{live.base_url}/healthz"
            )
        with pytest.raises(runwayml.BadRequestError, match="data URI"):
            client.video_to_video.create(
                model="gen4_aleph", prompt_text="x", video_uri="data:video/mp4,abc"
            )
        old = httpx.get(
            f"{live.base_url}/v1/organization",
            headers={"Authorization": f"Bearer {live.token}", "X-Runway-Version": "2023-01-01"},
        )
        assert old.status_code == 400
        assert old.json() == {
            "error": "X-Runway-Version '2023-01-01' is not known here; this server speaks "
            "2024-11-06."
        }
        long = httpx.get(
            f"{live.base_url}/v1/organization",
            headers={"Authorization": f"Bearer {live.token}", "X-Runway-Version": "9" * 5000},
        )
        assert long.status_code == 400  # quoted only in part
        assert long.json()["error"].startswith(f"X-Runway-Version '{'9' * 40}...' is not known")
        assert client.organization.retrieve().credit_balance == 100_000


def test_runway_uris_last_24_hours_and_fetched_urls_keep_the_upload_limit(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(max_upload_bytes=20_000)) as live:
        client = sdk(live)
        small = make_video(tmp_path / "small.mp4", seconds=0.2, size=(64, 48))
        uri = client.uploads.create_ephemeral(file=small).uri
        uuid = uri.removeprefix("runway://upload/")
        with live.ctx.db.write() as conn:  # a day and a bit later
            conn.execute(
                update(uploads_table)
                .where(uploads_table.c.uuid == uuid)
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
        with pytest.raises(runwayml.BadRequestError, match="expired"):
            client.video_to_video.create(model="gen4_aleph", prompt_text="x", video_uri=uri)
        make_video(tmp_path / "big.mp4", seconds=3, size=(320, 240), pattern="noise")
        assert (tmp_path / "big.mp4").stat().st_size > 20_000
        with serve_files(tmp_path) as base, pytest.raises(runwayml.BadRequestError) as big:
            client.video_to_video.create(
                model="gen4_aleph", prompt_text="x", video_uri=f"{base}/big.mp4"
            )
        assert big.value.status_code == 400
        assert big.value.body == {"error": "videoUri is larger than 20000 bytes."}
        assert list(live.ctx.tmp_dir.glob("source-*")) == []


def test_the_key_works_on_its_default_account_when_the_user_has_several(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings()) as live:
        client = sdk(live)
        default = live.client.get(f"{live.api}/features/").json()["email"]
        for email in ("zed@example.com", "amy@example.com"):
            made = live.client.post(f"{live.api}/accounts/{email}", json={"maxJobs": 2})
            assert made.status_code == 200
        # useapi's surface now wants an email; Runway's, which has none, uses the default
        assert live.client.get(f"{live.api}/features/").status_code == 400
        assert client.organization.retrieve().tier.models["gen4_aleph"].max_concurrent_generations
        uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=1)).uri
        created = client.video_to_video.create(model="gen4_aleph", prompt_text="x", video_uri=uri)
        assert wait(client, created.id, {"SUCCEEDED"}).status == "SUCCEEDED"
        mine = live.client.get(f"{live.api}/tasks/", params={"email": default}).json()
        assert [t["taskId"].rsplit(":", 1)[1] for t in mine] == [created.id]
        assert client.organization.retrieve_usage().results[0].used_credits[0].amount == 15
        # without the default account, the oldest of the others (zed, made first); the
        # uploads made on the deleted one, used or not, went with it
        unused = client.uploads.create_ephemeral(file=tmp_path / "in.mp4").uri
        assert live.client.delete(f"{live.api}/accounts/{default}").status_code == 204
        fresh = client.uploads.create_ephemeral(file=tmp_path / "in.mp4").uri
        again = client.video_to_video.create(model="gen4_aleph", prompt_text="x", video_uri=fresh)
        listed = live.client.get(f"{live.api}/tasks/", params={"email": "zed@example.com"}).json()
        assert again.id in [t["taskId"].rsplit(":", 1)[1] for t in listed]
        assert wait(client, again.id, {"SUCCEEDED"}).status == "SUCCEEDED"
        for gone in (uri, unused):
            with pytest.raises(runwayml.BadRequestError, match="the uploaded file was deleted"):
                client.video_to_video.create(model="gen4_aleph", prompt_text="x", video_uri=gone)
        # with no account left, an upload is refused before its link is handed out
        for email in ("zed@example.com", "amy@example.com"):
            assert live.client.delete(f"{live.api}/accounts/{email}").status_code == 204
        with pytest.raises(runwayml.NotFoundError, match="Configuration not found"):
            client.uploads.create_ephemeral(file=tmp_path / "in.mp4")


def test_runway_takes_any_32_bit_seed_and_keeps_it(live: LiveServer, tmp_path: Path) -> None:
    client = sdk(live)
    uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=0.5)).uri
    for seed in (0, 2**32 - 1):
        made = client.video_to_video.create(
            model="aleph2", prompt_text="snow", video_uri=uri, seed=seed
        )
        seen = live.client.get(f"{live.api}/tasks/").json()
        assert next(t for t in seen if t["id"] == made.id)["options"]["seed"] == seed
    for seed in (-1, 2**32):
        with pytest.raises(runwayml.BadRequestError):
            client.video_to_video.create(model="aleph2", prompt_text="x", video_uri=uri, seed=seed)
    with pytest.raises(runwayml.BadRequestError, match="not a string"):  # no "5" taken as 5
        client.video_to_video.create(
            model="aleph2", prompt_text="x", video_uri=uri, extra_body={"seed": "5"}
        )


def test_aleph2_prores_options_reach_the_output_format_answer(
    live: LiveServer, tmp_path: Path
) -> None:
    """Every proresProfile the SDK offers is a known field; ProRes itself is refused by name,
    an unknown profile is a 400 of its own."""
    client = sdk(live)
    uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=0.5)).uri
    for profile in ("422", "4444", "422 Proxy", "422 LT", "422 HQ", "4444 XQ"):
        with pytest.raises(runwayml.BadRequestError) as prores:
            client.video_to_video.create(
                model="aleph2",
                prompt_text="x",
                video_uri=uri,
                output_format="prores",
                prores_profile=profile,  # type: ignore[arg-type]
            )
        assert prores.value.body == {"error": "outputFormat: this server makes mp4 (H.264) only."}
    with pytest.raises(runwayml.BadRequestError, match="proresProfile"):
        client.video_to_video.create(
            model="aleph2",
            prompt_text="x",
            video_uri=uri,
            output_format="prores",
            extra_body={"proresProfile": "8K RAW"},
        )
    with pytest.raises(runwayml.BadRequestError, match="only valid when outputFormat"):
        client.video_to_video.create(
            model="aleph2", prompt_text="x", video_uri=uri, prores_profile="422"
        )
    assert client.organization.retrieve().credit_balance == 100_000


def test_a_data_uri_over_its_limit_is_a_400(live: LiveServer) -> None:
    """Within the body's own limit, a data URI past Runway's 16 MB is invalid input (400, the
    SDK's BadRequestError), not a 413."""
    payload = base64.b64encode(b"\0" * (16 * 2**20 + 3)).decode()
    with pytest.raises(runwayml.BadRequestError) as big:
        sdk(live).video_to_video.create(
            model="gen4_aleph", prompt_text="x", video_uri=f"data:video/mp4;base64,{payload}"
        )
    assert big.value.body == {"error": f"videoUri: a data URI may hold at most {16 * 2**20} bytes."}
