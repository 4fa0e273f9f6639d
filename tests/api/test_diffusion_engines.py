"""A whole task through the HTTP API with the LTX and Wan engines (tiny random models on CPU),
and the pre-flight refusal of a job that cannot fit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.engines.tiny_pipelines import build_tiny_ltx
from tests.engines.tiny_wan import build_tiny_wan
from tests.harness import start_server
from tests.videos import probe_output
from vidmorph.config import Settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {"ltx": build_tiny_ltx(root / "ltx"), "wan": build_tiny_wan(root / "wan")}


@pytest.mark.parametrize("engine", ["ltx", "wan"])
def test_task_runs_through_http_with_each_diffusers_engine(
    engine: str,
    tiny_models: dict[str, Path],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    settings = make_settings(
        engine=engine,
        engine_device="cpu",
        wan_max_area_px=320 * 192,
        **{f"{engine}_model": str(tiny_models[engine])},
    )
    with start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1, size=(320, 192))
        task = live.create(
            {
                "assetId": asset["assetId"],
                "text_prompt": "red monkey dance",
                "structure_transformation": 6,
                "seed": 3,
            }
        ).json()
        assert task["status"] == "PENDING", task
        seen_ratios: set[str] = set()
        done = task
        while done["status"] in ("PENDING", "RUNNING"):
            done = live.wait_task(task["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=0.2)
            if done["status"] == "RUNNING" and done["progressRatio"]:
                seen_ratios.add(done["progressRatio"])
        assert done["status"] == "SUCCEEDED", done["error"]
        assert len(seen_ratios) >= 2  # progress moved while the model denoised
        out = tmp_path / "out.mp4"
        out.write_bytes(httpx.get(done["artifacts"][0]["url"]).content)
        info = probe_output(out)
        assert (info["codec"], info["width"], info["height"]) == ("h264", 1280, 768)
        assert round(info["fps"]) == 24 and abs(info["duration_s"] - 1.0) <= 1 / 24 + 1e-6


def test_job_that_cannot_fit_is_refused_before_it_runs(
    tiny_models: dict[str, Path], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(
        engine="ltx",
        engine_device="cpu",
        workers=0,
        ltx_model=str(tiny_models["ltx"]),
        engine_memory_budget_bytes=1024,
    )
    with start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        resp = live.create({"assetId": asset["assetId"], "text_prompt": "night"})
        assert resp.status_code == 400 and "device memory" in resp.json()["error"]
        assert live.client.get(f"{live.api}/tasks/").json() == []
