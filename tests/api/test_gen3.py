"""POST /gen3/video and /gen3turbo/video: validation, output, reproducibility, idempotency."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from tests.harness import LiveServer, start_server
from tests.videos import probe_output, read_frames
from vidmorph.config import Settings


def _download(url: str, path: Path) -> Path:
    resp = httpx.get(url)
    assert resp.status_code == 200
    path.write_bytes(resp.content)
    return path


def test_json_create_runs_to_a_1280x768_h264_artifact(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=2, size=(480, 360), fps=30, audio=True)
    resp = server.create(
        {
            "assetId": asset["assetId"],
            "text_prompt": "the same street at night in the rain",
            "structure_transformation": 6,
            "seed": 42,
            "replyRef": "r1",
        }
    )
    assert resp.status_code == 200, resp.text
    task = resp.json()
    assert task["status"] == "PENDING" and task["taskType"] == "gen3a" and task["code"] == 200
    assert task["taskId"] == f"user:1-runwayml:default@vidmorph.local-task:{task['id']}"
    opts = task["options"]
    assert opts["structure_transformation"] == 0.6 and opts["seed"] == 42
    assert (opts["width"], opts["height"], opts["seconds"]) == (1280, 768, 2)
    assert task["replyRef"] == "r1" and task["artifacts"] == []
    done = server.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"})
    assert done["status"] == "SUCCEEDED", done["error"]
    assert done["progressRatio"] == "1"
    art = done["artifacts"][0]
    assert art["metadata"]["dimensions"] == [1280, 768] and art["metadata"]["frameRate"] == 24
    out = probe_output(_download(art["url"], tmp_path / "out.mp4"))
    assert (out["codec"], out["width"], out["height"], out["pix_fmt"]) == (
        "h264",
        1280,
        768,
        "yuv420p",
    )
    assert round(out["fps"]) == 24 and abs(out["duration_s"] - 2.0) <= 1 / 24 + 1e-6
    assert out["has_audio"] and out["faststart"]
    listed = server.client.get(f"{server.api}/assets/?mediaType=video").json()
    assert art["id"] in [a["id"] for a in listed]  # outputs are assets too


def test_a_setting_allows_outputs_longer_than_ten_seconds(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(max_seconds=13)) as live:
        asset = live.upload_video(tmp_path, seconds=12, size=(96, 64))["assetId"]
        assert live.create({"assetId": asset, "text_prompt": "x", "seconds": 14}).status_code == 400
        task = live.create({"assetId": asset, "text_prompt": "rain", "seconds": 12}).json()
        assert task["options"]["seconds"] == 12
        done = live.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=120)
        assert done["status"] == "SUCCEEDED", done["error"]
        out = probe_output(_download(done["artifacts"][0]["url"], tmp_path / "long.mp4"))
        assert (out["width"], out["height"]) == (1280, 768)
        assert abs(out["duration_s"] - 12.0) <= 1 / 24 + 1e-6


def test_output_lasts_min_of_seconds_and_input(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=3)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "winter", "seconds": 1})
    done = server.wait_task(task.json()["taskId"], {"SUCCEEDED", "FAILED"})
    out = probe_output(_download(done["artifacts"][0]["url"], tmp_path / "o.mp4"))
    assert abs(out["duration_s"] - 1.0) <= 1 / 24 + 1e-6 and not out["has_audio"]
    short = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": short["assetId"], "text_prompt": "winter", "seconds": 5})
    assert task.json()["options"]["seconds"] == 5
    done = server.wait_task(task.json()["taskId"], {"SUCCEEDED", "FAILED"})
    assert abs(done["artifacts"][0]["metadata"]["duration"] - 1.0) < 0.05


def test_multipart_form_values_are_coerced(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    form = {
        "assetId": asset["assetId"],
        "text_prompt": "sepia",
        "structure_transformation": "2.5",
        "seconds": "1",
        "seed": "77",
        "exploreMode": "false",
        "replyRef": "",
    }
    resp = server.client.post(
        f"{server.api}/gen3/video", files={k: (None, v) for k, v in form.items()}
    )
    assert resp.status_code == 200, resp.text
    opts = resp.json()["options"]
    assert opts["structure_transformation"] == 0.25 and opts["seed"] == 77 and opts["seconds"] == 1


def test_options_sent_as_null_take_their_defaults(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)["assetId"]
    nulls = dict.fromkeys(["exploreMode", "seed", "seconds", "replyUrl", "resolution"])
    plain = server.client.post(
        f"{server.api}/gen3/video", json={"assetId": asset, "text_prompt": "x", **nulls}
    )
    assert plain.status_code == 200, plain.text
    assert plain.json()["options"]["exploreMode"] is False
    turbo = server.client.post(
        f"{server.api}/gen3turbo/video",
        json={"assetId": asset, "text_prompt": "x", "aspect_ratio": None, **nulls},
    )
    assert turbo.status_code == 200 and turbo.json()["options"]["width"] == 1280
    missing = server.client.post(
        f"{server.api}/gen3/video", json={"assetId": asset, "text_prompt": None}
    )
    assert missing.status_code == 400 and "text_prompt" in missing.json()["error"]


def test_invalid_bodies_are_400_with_a_message(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)["assetId"]
    cases = [
        {"text_prompt": "x"},
        {"assetId": asset},
        {"assetId": asset, "text_prompt": ""},
        {"assetId": asset, "text_prompt": " \t\n "},
        {"assetId": asset, "text_prompt": "x" * 1001},
        {"assetId": asset, "text_prompt": "x", "structure_transformation": 11},
        {"assetId": asset, "text_prompt": "x", "structure_transformation": -1},
        {"assetId": asset, "text_prompt": "x", "seconds": 0},
        {"assetId": asset, "text_prompt": "x", "seconds": 11},
        {"assetId": asset, "text_prompt": "x", "seed": 0},
        {"assetId": asset, "text_prompt": "x", "seed": 4294967295},
        {"assetId": asset, "text_prompt": "x", "resolution": "1080p"},
        {"assetId": asset, "text_prompt": "x", "maxJobs": 11},
        {"assetId": asset, "text_prompt": "x", "replyUrl": "ftp://example.com/hook"},
        {"assetId": asset, "text_prompt": "x", "replyUrl": "https://e.com/" + "a" * 1020},
        {"assetId": asset, "text_prompt": "x", "replyRef": "r" * 1025},
    ]
    for body in cases:
        resp = server.create(body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["code"] == 400 and resp.json()["error"], body
    bad_json = server.client.post(
        f"{server.api}/gen3/video", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["code"] == 400


def test_unknown_or_non_video_assets(server: LiveServer, tmp_path: Path) -> None:
    missing = "user:1-runwayml:default@vidmorph.local-asset:5c1e7a44-34a5-4a0f-9f7b-2f2d0f1f0d11"
    resp = server.create({"assetId": missing, "text_prompt": "night"})
    assert resp.status_code == 404 and resp.json()["error"].startswith("Unable to retrieve assetId")
    from tests.videos import make_image

    image = server.upload(make_image(tmp_path / "i.png", (64, 64), "PNG"), "image/png")
    resp = server.create({"assetId": image["assetId"], "text_prompt": "night"})
    assert resp.status_code == 400 and "not a video" in resp.json()["error"]


def test_same_seed_gives_the_same_frames(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    outputs = []
    for n, seed in enumerate((5, 5, 6)):
        task = server.create(
            {
                "assetId": asset["assetId"],
                "text_prompt": "a dreamy alien world",
                "seed": seed,
                "structure_transformation": 7,
            }
        ).json()
        done = server.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"})
        outputs.append(read_frames(_download(done["artifacts"][0]["url"], tmp_path / f"{n}.mp4")))
    assert np.array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def test_turbo_portrait_output_and_half_price(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=2, size=(320, 240))
    resp = server.create(
        {"assetId": asset["assetId"], "text_prompt": "comic", "aspect_ratio": "portrait"},
        route="gen3turbo/video",
    )
    task = resp.json()
    assert task["taskType"] == "gen3a_turbo" and task["features"]["numPlanCredits_used"] == 10
    assert (task["options"]["width"], task["options"]["height"]) == (768, 1280)
    done = server.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"})
    out = probe_output(_download(done["artifacts"][0]["url"], tmp_path / "p.mp4"))
    assert (out["width"], out["height"]) == (768, 1280)
    bad = server.create(
        {"assetId": asset["assetId"], "text_prompt": "x", "aspect_ratio": "square"},
        route="gen3turbo/video",
    )
    assert bad.status_code == 400


def test_idempotency_key_returns_the_first_task_or_409(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    body = {"assetId": asset["assetId"], "text_prompt": "neon"}
    first = server.create(body, headers={"Idempotency-Key": "abc"}).json()
    again = server.create(body, headers={"Idempotency-Key": "abc"}).json()
    assert first["taskId"] == again["taskId"]
    other = server.create({**body, "text_prompt": "noir"}, headers={"Idempotency-Key": "abc"})
    assert other.status_code == 409 and other.json()["code"] == 409
    fresh = server.create(body).json()
    assert fresh["taskId"] != first["taskId"]


def test_an_idempotency_key_over_200_characters_is_a_400_and_admits_nothing(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    body = {"assetId": asset["assetId"], "text_prompt": "neon"}
    for route in ("gen3/video", "gen3turbo/video"):
        resp = server.create(body, route, headers={"Idempotency-Key": "k" * 201})
        assert resp.status_code == 400, resp.text
        assert "Idempotency-Key" in resp.json()["error"] and resp.json()["code"] == 400
    assert server.client.get(f"{server.api}/tasks/").json() == []
    ok = server.create(body, headers={"Idempotency-Key": "k" * 200})
    assert ok.status_code == 200, ok.text
