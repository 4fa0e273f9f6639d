"""`vidmorph serve` as a real process on long input: a 120 s task in the memory a 10 s one
takes, its audio kept whole; and a disk that fills up mid-encode fails the task cleanly."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import httpx

from tests.harness import free_port
from tests.services import Proc, vidmorph_env, wait_for, wait_healthy
from tests.videos import make_video
from vidmorph.media.probe import probe

TOKEN = "user:1-longvideotoken0000000000000"
MIB = 1024 * 1024


class Server:
    def __init__(self, proc: Proc, port: int, data_dir: Path) -> None:
        self.proc, self.data_dir = proc, data_dir
        self.api = f"http://127.0.0.1:{port}/v1/runwayml"
        self.client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

    def upload(self, path: Path) -> dict[str, Any]:
        resp = self.client.post(
            f"{self.api}/assets/",
            params={"name": path.stem},
            content=path.read_bytes(),
            headers={"Content-Type": "video/mp4"},
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def run(self, asset: dict[str, Any], timeout_s: float, **params: Any) -> dict[str, Any]:
        body = {"assetId": asset["assetId"], "text_prompt": "night", **params}
        task = self.client.post(f"{self.api}/gen3/video", json=body)
        assert task.status_code == 200, task.text
        url = f"{self.api}/tasks/{task.json()['taskId']}"
        done: dict[str, Any] = {}

        def ended() -> bool:
            done.update(self.client.get(url).json())
            return done["status"] in {"SUCCEEDED", "FAILED", "CANCELLED"}

        wait_for(ended, timeout_s, "the task to end", step_s=0.5)
        return done


def _limit_file_size(max_bytes: int) -> None:
    """In the child: writes past `max_bytes` fail with EFBIG, as on a disk that is full."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


@contextmanager
def serve(
    tmp_path: Path, *, file_size_limit: int | None = None, **settings: str
) -> Iterator[Server]:
    port = free_port()
    data_dir = tmp_path / "data"
    env = vidmorph_env(
        data_dir=str(data_dir), port=str(port), api_token=TOKEN, engine="preview", **settings
    )
    preexec = None if file_size_limit is None else (lambda: _limit_file_size(file_size_limit))
    proc = Proc(["serve"], env, tmp_path / "serve.log", preexec=preexec)
    server = Server(proc, port, data_dir)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield server
    finally:
        server.client.close()
        proc.stop()


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        return samples / container.streams.audio[0].rate


def test_a_120_s_task_runs_in_the_memory_of_a_10_s_one_and_keeps_its_audio(
    tmp_path: Path,
) -> None:
    short = make_video(tmp_path / "short.mp4", seconds=10, size=(320, 192), audio=True)
    long = make_video(tmp_path / "long.mp4", seconds=120, size=(320, 192), audio=True)
    with serve(tmp_path, max_seconds="120") as server:
        short_asset, long_asset = server.upload(short), server.upload(long)
        # structure_transformation 0: the preview engine hands frames through, so the run
        # costs decode and encode only; the memory it takes is the stream's, as any engine's.
        done = server.run(short_asset, 120, structure_transformation=0)
        assert done["status"] == "SUCCEEDED", done
        after_short = server.proc.peak_rss_bytes()
        done = server.run(long_asset, 600, structure_transformation=0, seconds=120)
        assert done["status"] == "SUCCEEDED", done
        after_long = server.proc.peak_rss_bytes()
        # Whole-clip buffers took 135 MiB more per output second: 110 s more would be 14 GiB.
        assert after_long - after_short < 150 * MIB, (after_short // MIB, after_long // MIB)
        out = tmp_path / "out.mp4"
        out.write_bytes(server.client.get(done["artifacts"][0]["url"]).content)
    info = probe(out)
    assert (info.width, info.height, info.has_audio) == (1280, 768, True)
    assert abs(info.duration_s - 120.0) < 0.05
    assert abs(_audio_seconds(out) - 120.0) < 0.1


def test_a_disk_that_fills_up_mid_encode_fails_the_task_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=5, size=(320, 192))
    # 2 MB: the upload (40 KB) and the database fit, the 5 MB output does not.
    with serve(tmp_path, file_size_limit=2 * MIB) as server:
        asset = server.upload(video)
        done = server.run(asset, 120, structure_transformation=6)
        assert done["status"] == "FAILED", done
        assert done["error"]["errorMessage"] == "The worker ran out of disk space while encoding."
        scratch = [p for p in (server.data_dir / "tmp").rglob("*") if p.is_file()]
        assert scratch == []
        listed = server.client.get(f"{server.api}/assets/").json()
        assert [a["assetId"] for a in listed] == [asset["assetId"]]
