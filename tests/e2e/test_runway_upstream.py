"""VIDMORPH_ENGINE=runway: one Vidmorph hands its tasks to another serving Runway's API, through
the official SDK in between (two real servers on loopback): the output comes back fitted to the
task, progress follows, a cancel reaches upstream, a SAFETY failure there is a moderation
failure here, and a worker killed mid-task resumes the same upstream job after a restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import LiveServer, free_port, start_server
from tests.services import Proc, vidmorph_env, wait_for, wait_healthy
from tests.videos import make_video, probe_output
from vidmorph.config import Settings

SLOW = "tests.engines.fixtures:slow"
#: flagged by the offline classifier only: the upstream refuses what this side lets through
CLASSIFIER_ONLY = "shut up you moron"


@pytest.fixture
def upstream(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[LiveServer]:
    with start_server(make_settings(data_dir=tmp_path / "upstream", engine=SLOW)) as server:
        yield server


def forwarding(make_settings: Callable[..., Settings], tmp_path: Path, up: LiveServer) -> Settings:
    return make_settings(
        data_dir=tmp_path / "here",
        engine="runway",
        runway_base_url=up.base_url,
        runway_api_secret=up.token,
        runway_poll_s=0.1,
        moderation_classifier=False,
    )


def upstream_tasks(up: LiveServer) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = up.client.get(f"{up.api}/tasks/").json()
    return tasks


def test_a_task_runs_upstream_and_comes_back_fitted_to_the_task(
    make_settings: Callable[..., Settings], upstream: LiveServer, tmp_path: Path
) -> None:
    with start_server(forwarding(make_settings, tmp_path, upstream)) as here:
        asset = here.upload(make_video(tmp_path / "in.mp4", seconds=3, size=(320, 192), audio=True))
        made = here.create({"assetId": asset["assetId"], "text_prompt": "rain", "seed": 21})
        task = made.json()
        ratios = set()
        deadline = time.monotonic() + 90
        while task["status"] not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
            task = here.client.get(f"{here.api}/tasks/{task['taskId']}").json()
            if task["status"] == "RUNNING" and task["progressRatio"]:
                ratios.add(float(task["progressRatio"]))
            time.sleep(0.05)
        assert task["status"] == "SUCCEEDED", task["error"]
        assert len(ratios) >= 2 and max(ratios) < 1, ratios  # upstream progress, mapped here
        (there,) = upstream_tasks(upstream)
        assert there["taskType"] == "gen4_aleph" and there["status"] == "SUCCEEDED"
        assert there["options"]["text_prompt"] == "rain" and there["options"]["seed"] == 21
        out = tmp_path / "out.mp4"
        out.write_bytes(httpx.get(task["artifacts"][0]["url"]).content)
        info = probe_output(out)
        assert (info["width"], info["height"], info["has_audio"]) == (1280, 768, True)
        assert info["duration_s"] == pytest.approx(3.0, abs=0.05)


def test_a_cancel_here_cancels_upstream_and_safety_failures_come_back(
    make_settings: Callable[..., Settings], upstream: LiveServer, tmp_path: Path
) -> None:
    with start_server(forwarding(make_settings, tmp_path, upstream)) as here:
        asset = here.upload(make_video(tmp_path / "in.mp4", seconds=8, size=(160, 96)))
        task = here.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        wait_for(
            lambda: [t["status"] for t in upstream_tasks(upstream)] == ["RUNNING"], 60, "upstream"
        )
        assert here.client.delete(f"{here.api}/tasks/{task['taskId']}").status_code == 204
        wait_for(
            lambda: [t["status"] for t in upstream_tasks(upstream)] == ["CANCELLED"],
            30,
            "the upstream cancel",
        )
        refused = here.create({"assetId": asset["assetId"], "text_prompt": CLASSIFIER_ONLY}).json()
        assert refused["status"] == "PENDING"  # this side's blocklist let it through
        failed = here.wait_task(refused["taskId"], {"FAILED", "SUCCEEDED"})
        assert failed["status"] == "FAILED"
        assert failed["error"]["reason"] == "SAFETY.INPUT.TEXT"
        assert "moderation" in failed["error"]["errorMessage"]


def test_a_worker_killed_mid_task_resumes_the_same_upstream_job(
    make_settings: Callable[..., Settings], upstream: LiveServer, tmp_path: Path
) -> None:
    port = free_port()
    env = vidmorph_env(
        port=str(port),
        data_dir=str(tmp_path / "here"),
        engine="runway",
        runway_base_url=upstream.base_url,
        runway_api_secret=upstream.token,
        runway_poll_s="0.1",
        lease_s="2",
        recover_interval_s="0.3",
        api_token="user:1-resumetoken0000000000000000",
    )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(
        base_url=f"{base}/v1/runwayml",
        headers={"Authorization": "Bearer user:1-resumetoken0000000000000000"},
        timeout=30,
    )
    video = make_video(tmp_path / "in.mp4", seconds=6, size=(160, 96))
    first = Proc(["serve"], env, tmp_path / "first.log")
    try:
        wait_healthy(base, first)
        asset = client.post(
            "/assets/", content=video.read_bytes(), headers={"Content-Type": "video/mp4"}
        ).json()
        task = client.post("/gen3/video", json={"assetId": asset["assetId"], "text_prompt": "fog"})
        task_id = task.json()["taskId"]
        wait_for(
            lambda: [t["status"] for t in upstream_tasks(upstream)] == ["RUNNING"], 60, "upstream"
        )
    finally:
        first.kill9()
    second = Proc(["serve"], env, tmp_path / "second.log")
    try:
        wait_healthy(base, second)
        deadline = time.monotonic() + 90
        done: dict[str, Any] = {}
        while time.monotonic() < deadline:
            done = client.get(f"/tasks/{task_id}").json()
            if done["status"] in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(0.2)
        assert done["status"] == "SUCCEEDED", done
        (there,) = upstream_tasks(upstream)  # resumed, not started again
        assert there["status"] == "SUCCEEDED"
    finally:
        second.stop()
        client.close()
