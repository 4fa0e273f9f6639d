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


def test_generate_takes_an_account_and_checks_its_output_before_uploading(
    server: LiveServer, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "clip.mp4", seconds=1)
    login = ["--url", server.base_url, "--token", server.token]
    missing = _run(
        ["generate", str(source), "-p", "x", "-o", str(tmp_path / "none" / "o.mp4"), *login],
        tmp_path / "d",
    )
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    slash = _run(
        ["generate", str(source), "-p", "x", "-o", f"{tmp_path / 'nope'}/", *login], tmp_path / "d"
    )
    assert slash.returncode == 1 and "does not exist" in slash.stderr
    under_file = _run(
        ["generate", str(source), "-p", "x", "-o", f"{source}/x.mp4", *login], tmp_path / "d"
    )
    assert under_file.returncode == 1 and "is a file, not a folder" in under_file.stderr
    assert not (tmp_path / "nope").exists()
    assert server.client.get(f"{server.api}/assets/").json() == []  # nothing was uploaded

    made = server.client.post(
        f"{server.api}/accounts/second@x.com", json={"email": "second@x.com", "maxJobs": 1}
    )
    assert made.status_code == 200
    which = _run(["generate", str(source), "-p", "x", *login], tmp_path / "d")
    assert which.returncode == 1 and "pass --email" in which.stderr

    folder = tmp_path / "out"
    folder.mkdir()
    args = ["generate", str(source), "-p", "noir", "--email", "second@x.com", "-o", str(folder)]
    done = _run([*args, *login], tmp_path / "d")
    assert done.returncode == 0, done.stdout + done.stderr
    assert probe_output(folder / "clip-vidmorph.mp4")["width"] == 1280
    assert [p.name for p in folder.iterdir()] == ["clip-vidmorph.mp4"]  # no partial file left
    (task,) = server.client.get(f"{server.api}/tasks/?email=second@x.com").json()
    assert "-runwayml:second@x.com-task:" in task["taskId"]


def test_tokens_are_made_for_existing_users_only_and_can_be_revoked(server: LiveServer) -> None:
    data = server.ctx.settings.data_dir
    unknown = _run(["token", "create", "--user", "99"], data)
    assert unknown.returncode == 1 and "no user 99" in unknown.stdout
    assert server.ctx.users.get(99) is None
    made = _run(["token", "create", "--user", "1"], data)
    assert made.returncode == 0, made.stderr
    token = next(line.split()[-1] for line in made.stdout.splitlines() if "token:" in line)
    assert _run(["token", "revoke", token], data).returncode == 0
    resp = httpx.get(f"{server.api}/accounts", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    again = _run(["token", "revoke", token], data)
    assert again.returncode == 1 and "no such token" in again.stdout
