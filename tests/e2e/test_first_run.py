"""A newcomer's first run: `vidmorph serve` in an empty folder, then what its banner says.

The banner's curl example is run as printed (bash, curl, python3) on the sample video that
`vidmorph sample` writes, and must leave a real output video; the CLI finds its token from
any folder; what goes wrong is one line; the webhook secret can be shown again; help reads
plainly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import free_port
from tests.services import Proc, vidmorph_env, wait_for, wait_healthy
from tests.videos import probe_output

pytestmark = pytest.mark.slow


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidmorph", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**env, "COLUMNS": "200"},
        cwd=cwd,
        check=False,
    )


def _banner_block(output: str, first: str, stop: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start, len(lines)) if stop in lines[i])
    return [line.strip() for line in lines[start + 1 : end + 1]]


def test_the_printed_example_runs_as_printed_and_the_cli_works_from_anywhere(
    tmp_path: Path,
) -> None:
    folder, elsewhere = tmp_path / "fresh", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    port = free_port()
    env = vidmorph_env(port=str(port))
    env["VIDMORPH_CONFIG_DIR"] = str(tmp_path / "config")
    server = Proc(["serve"], env, tmp_path / "serve.log", cwd=folder)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        wait_for(lambda: "xargs curl" in server.output(), 10, "the banner")
        banner = server.output()
        assert f"Playground:      http://127.0.0.1:{port}/" in banner
        token = next(line.split()[-1] for line in banner.splitlines() if "API token:" in line)
        assert (folder / "vidmorph-data" / "api-token").read_text().strip() == token
        assert (folder / "vidmorph-data" / "api-token").stat().st_mode & 0o777 == 0o600
        secret = next(line.split()[2] for line in banner.splitlines() if "Webhook secret:" in line)

        made = _cli(["sample", "input.mp4"], folder, env)
        assert made.returncode == 0, made.stderr
        curl = _banner_block(banner, "Or with curl:", "xargs curl")
        assert len(curl) == 5 and "<" not in "".join(curl)  # nothing left to fill in
        shown = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(curl)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
        assert '"status":"SUCCEEDED"' in shown.stdout  # the events stream's last event
        info = probe_output(folder / "output.mp4")
        assert (info["width"], info["height"], info["codec"]) == (1280, 768, "h264")

        # The CLI, from another folder, finds the token the server saved for its URL.
        run = _cli(
            ["generate", str(folder / "input.mp4"), "-p", "neon night", "--seconds", "2"],
            elsewhere,
            env,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert probe_output(folder / "input-vidmorph.mp4")["duration_s"] == pytest.approx(2, 0.05)

        too_long = _cli(
            ["generate", str(folder / "input.mp4"), "-p", "x", "--seconds", "30"], elsewhere, env
        )
        assert too_long.returncode == 1
        assert too_long.stderr.strip() == "error: --seconds 30: this server makes at most 10 s."

        again = _cli(["webhook-secret"], folder, env)
        assert again.returncode == 0 and again.stdout.strip() == secret
    finally:
        server.stop()

    down = _cli(["generate", str(folder / "input.mp4"), "-p", "x"], elsewhere, env)
    assert down.returncode == 1
    assert down.stderr.count("\n") == 1 and "Traceback" not in down.stderr
    assert down.stderr.startswith(
        f"error: cannot reach a Vidmorph server at http://127.0.0.1:{port}"
    )


def test_help_names_values_plainly(tmp_path: Path) -> None:
    env = vidmorph_env()
    for command in (["--help"], ["generate", "--help"], ["serve", "--help"], ["fleet", "--help"]):
        shown = _cli(command, tmp_path, env)
        assert shown.returncode == 0, shown.stderr
        assert "<bool>" not in shown.stdout and "range>" not in shown.stdout, shown.stdout
        assert "<str>" not in shown.stdout and "<int>" not in shown.stdout, shown.stdout
    generate = _cli(["generate", "--help"], tmp_path, env).stdout
    assert "--seconds N" in generate and "--structure 0..10" in generate


def test_no_token_anywhere_is_one_line(tmp_path: Path) -> None:
    env = vidmorph_env()
    env["VIDMORPH_CONFIG_DIR"] = str(tmp_path / "empty-config")
    clip = tmp_path / "in.mp4"
    clip.write_bytes(b"not looked at")
    shown = _cli(["generate", str(clip), "-p", "x"], tmp_path, env)
    assert shown.returncode == 1
    assert shown.stderr.startswith("error: no API token for http://127.0.0.1:8000")
    assert shown.stderr.count("\n") == 1
    assert os.listdir(tmp_path) == ["in.mp4"]
