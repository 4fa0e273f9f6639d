"""`vidmorph serve` as a real process: kill -9 mid-task, start again, the task still finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.harness import free_port
from tests.receiver import Receiver
from tests.videos import make_video

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "user:1-restarttoken00000000000000"


@contextmanager
def serve(data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDMORPH_")}
    env.update(
        VIDMORPH_DATA_DIR=str(data_dir),
        VIDMORPH_PORT=str(port),
        VIDMORPH_API_TOKEN=TOKEN,
        VIDMORPH_ENGINE="tests.engines.fixtures:slow",
        VIDMORPH_LEASE_S="2",
        VIDMORPH_RECOVER_INTERVAL_S="0.5",
        VIDMORPH_CALLBACK_ALLOW_PRIVATE="true",
        VIDMORPH_CALLBACK_RETRY_BASE_S="0.2",
        PYTHONPATH=str(ROOT),
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidmorph", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def test_task_interrupted_by_kill_9_is_run_again_and_calls_back(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/v1/runwayml"
    client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    video = make_video(tmp_path / "in.mp4", seconds=2)
    log = tmp_path / "serve.log"
    with Receiver() as hook:
        with serve(tmp_path / "data", port, log) as proc:
            asset = client.post(
                f"{api}/assets/?name=in",
                content=video.read_bytes(),
                headers={"Content-Type": "video/mp4"},
            ).json()
            task = client.post(
                f"{api}/gen3/video",
                json={
                    "assetId": asset["assetId"],
                    "text_prompt": "night",
                    "replyUrl": f"{hook.url}/cb",
                },
            ).json()
            tid = task["taskId"]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                body = client.get(f"{api}/tasks/{tid}").json()
                if body["status"] == "RUNNING" and float(body["progressRatio"] or 0) > 0.2:
                    break
                time.sleep(0.05)
            assert body["status"] == "RUNNING", body
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        with serve(tmp_path / "data", port, log):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                body = client.get(f"{api}/tasks/{tid}").json()
                if body["status"] in ("SUCCEEDED", "FAILED"):
                    break
                time.sleep(0.2)
            assert body["status"] == "SUCCEEDED", (body, log.read_text()[-3000:])
            assert httpx.get(body["artifacts"][0]["url"]).status_code == 200
            assert hook.wait_for(
                lambda reqs: any(r.json()["status"] == "SUCCEEDED" for r in reqs), 20
            ), [r.json()["status"] for r in hook.requests]
