"""The `vidmorph` command line against a running server: token create and generate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.harness import LiveServer
from tests.videos import make_video, probe_output

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDMORPH_")}
    env.update(VIDMORPH_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "vidmorph", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def test_generate_uploads_follows_and_downloads(server: LiveServer, tmp_path: Path) -> None:
    source = make_video(tmp_path / "clip.mp4", seconds=2, size=(640, 360))
    out = tmp_path / "result.mp4"
    done = _run(
        [
            "generate",
            str(source),
            "--prompt",
            "watercolor painting",
            "--seconds",
            "1",
            "--structure",
            "5",
            "--seed",
            "9",
            "-o",
            str(out),
            "--url",
            server.base_url,
            "--token",
            server.token,
        ],
        tmp_path / "cli-data",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seed 9" in done.stdout
    info = probe_output(out)
    assert (info["codec"], info["width"], info["height"]) == ("h264", 1280, 768)
    assert abs(info["duration_s"] - 1.0) <= 1 / 24 + 1e-6


def test_generate_reports_http_errors(server: LiveServer, tmp_path: Path) -> None:
    source = make_video(tmp_path / "clip.mp4", seconds=1)
    done = _run(
        [
            "generate",
            str(source),
            "--prompt",
            "x",
            "-o",
            str(tmp_path / "o.mp4"),
            "--url",
            server.base_url,
            "--token",
            "user:1-wrong",
        ],
        tmp_path / "d",
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: HTTP 401 from /v1/runwayml/features/: Unauthorized "
        "(check --token or VIDMORPH_API_TOKEN)"
    )


def test_token_create_makes_a_working_token_for_a_new_user(server: LiveServer) -> None:
    done = _run(["token", "create"], server.ctx.settings.data_dir)
    assert done.returncode == 0, done.stderr
    token = next(line.split()[-1] for line in done.stdout.splitlines() if "token:" in line)
    assert token.startswith("user:2-")
    resp = httpx.get(f"{server.api}/accounts", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and list(resp.json()) == ["default@vidmorph.local"]


def test_generate_turbo_portrait_makes_a_portrait_video(server: LiveServer, tmp_path: Path) -> None:
    source = make_video(tmp_path / "phone.mp4", seconds=1, size=(360, 640))
    out = tmp_path / "portrait.mp4"
    args = ["generate", str(source), "-p", "noir", "--turbo", "--portrait", "-o", str(out)]
    done = _run([*args, "--url", server.base_url, "--token", server.token], tmp_path / "d")
    assert done.returncode == 0, done.stdout + done.stderr
    info = probe_output(out)
    assert (info["width"], info["height"]) == (768, 1280)
    (task,) = server.client.get(f"{server.api}/tasks/").json()
    assert task["taskType"] == "gen3a_turbo"
