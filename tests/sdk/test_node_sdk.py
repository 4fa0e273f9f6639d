"""Runway's official TypeScript SDK (`@runwayml/sdk`, installed by scripts/test from the npm
registry into tests/sdk/node) runs its documented flow against a real server: `flow.mjs`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.harness import start_server
from tests.videos import make_video, probe_output
from vidmorph.config import Settings

NODE_DIR = Path(__file__).parent / "node"
SLOW = "tests.engines.fixtures:slow"


def test_the_typescript_sdk_runs_its_documented_flow(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (NODE_DIR / "node_modules" / "@runwayml" / "sdk").is_dir(), (
        "@runwayml/sdk is not installed: scripts/test runs `npm ci --prefix tests/sdk/node`"
    )
    short = make_video(tmp_path / "street.mp4", seconds=1, size=(320, 192))
    long = make_video(tmp_path / "long.mp4", seconds=5, size=(160, 96))
    with start_server(make_settings(engine=SLOW)) as live:
        env = {
            **os.environ,
            "BASE": live.base_url,
            "TOKEN": live.token,
            "VIDEO": str(short),
            "LONG_VIDEO": str(long),
        }
        ran = subprocess.run(
            [node, "flow.mjs"],
            cwd=NODE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        seen = json.loads(ran.stdout.strip().splitlines()[-1])
        assert seen["uri"].startswith("runway://upload/")
        assert seen["done"]["status"] == "SUCCEEDED" and seen["fetched"] == "SUCCEEDED"
        (tmp_path / "out.mp4").write_bytes(httpx.get(seen["done"]["output"][0]).content)
        assert probe_output(tmp_path / "out.mp4")["width"] == 1280
        org = seen["organization"]
        assert org["creditBalance"] == 100_000 - 15
        assert org["tier"]["models"]["gen4_aleph"]["maxConcurrentGenerations"] >= 1
    assert seen["badModel"] == {
        "raised": "BadRequestError",
        "status": 400,
        "error": {"error": "model: must be one of gen4_aleph, aleph2 on this server."},
    }
    assert seen["badKey"]["raised"] == "AuthenticationError"
    assert seen["before"] == "RUNNING" and seen["cancelled"] == "CANCELLED"
    assert seen["deleted"]["raised"] == "NotFoundError"
