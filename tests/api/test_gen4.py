"""useapi's POST /gen4/video (Gen-4 Aleph video to video) through a real server: the same
engines and task store as gen3, its own credits, and an optional reference image checked to be
the caller's image."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import LiveServer
from tests.videos import make_image
from vidmorph.service.accounts import create_token


def test_gen4_makes_a_task_with_its_reference_image(server: LiveServer, tmp_path: Path) -> None:
    video = server.upload_video(tmp_path, seconds=1, size=(320, 192))
    image = server.upload(make_image(tmp_path / "look.png", (64, 48)), "image/png")
    resp = server.create(
        {
            "video_assetId": video["assetId"],
            "image_assetId": image["assetId"],
            "text_prompt": "the same street, in snow",
            "seed": 11,
            "replyRef": "ref-1",
        },
        route="gen4/video",
    )
    assert resp.status_code == 200, resp.text
    task = resp.json()
    assert task["taskType"] == "gen4_aleph" and task["name"].startswith("Gen-4 Aleph 11, ")
    assert task["options"]["image_assetId"] == image["assetId"]
    assert task["replyRef"] == "ref-1"
    done = server.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED", done["error"]
    assert done["features"]["numPlanCredits_used"] == 15  # 1 s at 15 credits


def test_gen4_refuses_what_it_cannot_use(server: LiveServer, tmp_path: Path) -> None:
    video = server.upload_video(tmp_path, seconds=1)
    image = server.upload(make_image(tmp_path / "look.png", (64, 48)), "image/png")
    body = {"video_assetId": video["assetId"], "text_prompt": "snow"}
    as_image = server.create({**body, "image_assetId": video["assetId"]}, route="gen4/video")
    assert as_image.json() == {
        "error": f"image_assetId {video['assetId']} is not an image.",
        "code": 400,
    }
    swapped = server.create({**body, "video_assetId": image["assetId"]}, route="gen4/video")
    assert swapped.status_code == 400 and swapped.json()["error"].startswith("video_assetId ")
    assert "is not a video" in swapped.json()["error"]
    long = server.create({**body, "text_prompt": "x" * 1001}, route="gen4/video")
    assert long.status_code == 400 and long.json()["error"].startswith("text_prompt")
    _, other = create_token(server.ctx)
    theirs = httpx.post(
        f"{server.api}/gen4/video",
        json={**body, "image_assetId": image["assetId"]},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert theirs.status_code == 404


def test_gen4_keeps_the_inputs_framing_as_runways_aleph_does(
    server: LiveServer, tmp_path: Path
) -> None:
    for size, frame in (((192, 320), (720, 1280)), ((320, 320), (960, 960))):
        video = server.upload_video(tmp_path, seconds=1, size=size)
        task = server.create(
            {"video_assetId": video["assetId"], "text_prompt": "dusk"}, route="gen4/video"
        ).json()
        assert (task["options"]["width"], task["options"]["height"]) == frame, size
        done = server.wait_task(task["taskId"], {"SUCCEEDED"})
        meta = done["artifacts"][0]["metadata"]
        assert (meta["width"], meta["height"]) == frame
