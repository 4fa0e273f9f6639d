"""A task's media stream through a real server: decode, engine and encode overlap; a failure in
any stage (cancel, engine error, damaged input) stops all three and leaves nothing behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import LiveServer, start_server
from tests.services import wait_for
from tests.videos import make_damaged_mjpeg, make_video
from vidmorph.config import Settings
from vidmorph.media.probe import probe

STAGE_THREADS = ("task-decode", "task-engine", "vidmorph-scale", "vidmorph-yuv", "preview")


def stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(STAGE_THREADS)]


def assert_nothing_left(live: LiveServer, input_asset: dict[str, object]) -> None:
    """No stage thread still runs, no work directory is left, and no output asset was kept."""
    wait_for(lambda: not stage_threads(), 5, f"the stages to stop: {stage_threads()}")
    # a cancel is CANCELLED as the API answers; the worker unwinds (its work folder too) after
    wait_for(lambda: not any(live.ctx.tmp_dir.iterdir()), 5, "the work folder to go")
    listed = live.client.get(f"{live.api}/assets/").json()
    assert [a["assetId"] for a in listed] == [input_asset["assetId"]]
    stored = [p for p in live.ctx.settings.data_dir.rglob("video.*") if p.is_file()]
    assert len(stored) == 1  # the upload only


def test_stages_overlap_and_a_finished_task_leaves_only_its_output(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=3, audio=True)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "noir"}).json()
    done = server.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED", done
    wait_for(lambda: not stage_threads(), 5, "the stages to stop")
    assert list(server.ctx.tmp_dir.iterdir()) == []
    video = server.client.get(done["artifacts"][0]["url"])
    out = tmp_path / "out.mp4"
    out.write_bytes(video.content)
    info = probe(out)
    assert (info.width, info.height, info.has_audio) == (1280, 768, True)
    assert abs(info.duration_s - 3.0) < 0.05


def test_an_engine_error_midway_stops_every_stage_and_keeps_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine="tests.engines.fixtures:raises")) as live:
        asset = live.upload_video(tmp_path, seconds=4)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "x"}).json()
        done = live.wait_task(task["taskId"], {"FAILED", "SUCCEEDED"})
        assert done["status"] == "FAILED"
        assert done["error"]["errorMessage"] == "Internal error while generating."
        assert_nothing_left(live, asset)


def test_a_cancel_midway_stops_every_stage_and_keeps_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine="tests.engines.fixtures:slow")) as live:
        asset = live.upload_video(tmp_path, seconds=5)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "x"}).json()
        url = f"{live.api}/tasks/{task['taskId']}"
        wait_for(
            lambda: float(live.client.get(url).json()["progressRatio"] or 0) > 0.1,
            20,
            "the engine to be under way",
        )
        assert "task-decode" in stage_threads() or "task-engine" in stage_threads()
        started = time.monotonic()
        assert live.client.delete(f"{live.api}/scheduler/{task['taskId']}").status_code == 204
        assert live.wait_task(task["taskId"], {"CANCELLED"})["status"] == "CANCELLED"
        assert_nothing_left(live, asset)
        assert time.monotonic() - started < 5  # one batch of the slow engine, not the clip


def test_a_cancel_stops_an_engine_that_never_checks_for_one(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine="tests.engines.fixtures:deaf")) as live:
        asset = live.upload_video(tmp_path, seconds=5)  # 30 batches of 0.15 s: 4.5 s
        task = live.create({"assetId": asset["assetId"], "text_prompt": "x"}).json()
        url = f"{live.api}/tasks/{task['taskId']}"
        wait_for(lambda: "task-engine" in stage_threads(), 20, "the engine to be under way")
        time.sleep(0.5)
        assert live.client.get(url).json()["status"] == "RUNNING"
        started = time.monotonic()
        assert live.client.delete(url).status_code == 204
        assert live.wait_task(task["taskId"], {"CANCELLED"})["status"] == "CANCELLED"
        assert_nothing_left(live, asset)
        assert time.monotonic() - started < 3  # the encoder's own check, about once a second


def test_input_damaged_at_second_40_fails_the_task_saying_where(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(max_seconds=60)) as live:
        video = make_damaged_mjpeg(tmp_path / "in.mkv", seconds=45, damaged_from_s=40)
        asset = live.upload(video, content_type="video/x-matroska")
        assert asset["metadata"]["duration"] >= 44  # the probe took it: it demuxes whole
        body = {"assetId": asset["assetId"], "text_prompt": "x", "structure_transformation": 0}
        task = live.create(body).json()
        done = live.wait_task(task["taskId"], {"FAILED", "SUCCEEDED"}, timeout_s=120)
        assert done["status"] == "FAILED"
        assert done["error"]["errorMessage"] == (
            "The video is damaged at 40.0 s: it does not decode past there."
        )
        assert_nothing_left(live, asset)


def test_the_decoder_refuses_an_asset_above_the_pixel_limit_it_runs_under(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # A limit lowered after the upload: the worker's decoder enforces it too.
    settings = make_settings()
    with start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1, size=(640, 480))
    with start_server(settings.model_copy(update={"max_input_pixels": 320 * 240})) as live:
        task = live.create({"assetId": asset["assetId"], "text_prompt": "x"}).json()
        done = live.wait_task(task["taskId"], {"FAILED", "SUCCEEDED"})
        assert done["status"] == "FAILED"
        assert done["error"]["errorMessage"] == "The video could not be decoded."
        assert_nothing_left(live, asset)


def test_an_upload_above_the_pixel_limit_is_a_400_in_the_envelope(
    server: LiveServer, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "big.mp4", seconds=0.5, size=(4800, 2400))
    resp = server.client.post(
        f"{server.api}/assets/",
        params={"name": "big"},
        content=video.read_bytes(),
        headers={"Content-Type": "video/mp4"},
    )
    assert resp.status_code == 400
    assert resp.json() == {
        "error": "The frames are 4800x2400 (11.5 megapixels); this server takes at most "
        "9.4 megapixels per frame.",
        "code": 400,
    }
