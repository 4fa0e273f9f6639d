"""Long-video benchmark: peak memory and wall time per output second of one preview task through
a running `vidmorph serve`, for 10, 30, 60 and 120 s of 1080p input, in the same run.

Each task runs on a fresh server process (its peak RSS, VmHWM, is that task's alone), on the
embedded default (SQLite, local files, in-process worker, preview engine). The sources are made
once with the `ffmpeg` CLI (testsrc2 + a sine tone, 1920x1080 24 fps H.264). Rounds run the
lengths in alternating order; medians and ranges are printed, and the ratios to the 10 s task
of the same run (the baseline).

    .venv/bin/python bench/stream_bench.py [--rounds 2] [--lengths 10,30,60,120] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from tests.harness import free_port  # noqa: E402
from tests.services import Proc, vidmorph_env, wait_healthy  # noqa: E402

TOKEN = "user:1-streambenchtoken000000000000"
PROMPT = "the same street at night in the rain"
STRUCTURE = 6  # strength 0.6, as bench/preview_bench.py
MIB = 1024 * 1024


def make_source(ffmpeg: str, path: Path, seconds: int) -> None:
    command = [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=24:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True)


@contextmanager
def serve(work: Path, max_seconds: int) -> Iterator[tuple[Proc, str]]:
    port = free_port()
    data = Path(tempfile.mkdtemp(dir=work, prefix="data-"))
    env = vidmorph_env(
        data_dir=str(data), port=str(port), api_token=TOKEN, max_seconds=str(max_seconds)
    )
    proc = Proc(["serve"], env, work / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield proc, f"{base}/v1/runwayml"
    finally:
        proc.stop()
        shutil.rmtree(data, ignore_errors=True)


def run_task(work: Path, source: Path, seconds: int) -> dict[str, float]:
    """One task of `seconds` on a fresh server: its wall time and the process's peak RSS."""
    with serve(work, seconds) as (proc, api):
        client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        asset = client.post(
            f"{api}/assets/",
            params={"name": source.stem},
            content=source.read_bytes(),
            headers={"Content-Type": "video/mp4"},
        ).json()
        idle_rss = proc.peak_rss_bytes()
        body = {
            "assetId": asset["assetId"],
            "text_prompt": PROMPT,
            "structure_transformation": STRUCTURE,
            "seconds": seconds,
            "seed": 42,
        }
        started = time.perf_counter()
        created = client.post(f"{api}/gen3/video", json=body)
        if created.status_code != 200:
            raise RuntimeError(f"the {seconds} s task was refused: {created.text}")
        task = created.json()
        while True:
            done = client.get(f"{api}/tasks/{task['taskId']}").json()
            if done["status"] in {"SUCCEEDED", "FAILED"}:
                break
            time.sleep(0.2)
        wall_s = time.perf_counter() - started
        if done["status"] != "SUCCEEDED":
            raise RuntimeError(f"the {seconds} s task failed: {done['error']}")
        return {
            "wall_s": wall_s,
            "per_s": wall_s / seconds,
            "peak_mib": proc.peak_rss_bytes() / MIB,
            "idle_mib": idle_rss / MIB,
        }


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    median = fmt.format(statistics.median(values))
    return f"{median} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def report(lengths: list[int], runs: dict[int, list[dict[str, float]]], rounds: int) -> None:
    base = runs[lengths[0]]
    base_peak = statistics.median(r["peak_mib"] for r in base)
    base_per_s = statistics.median(r["per_s"] for r in base)
    print("\n### Long video: one preview task through `vidmorph serve`, 1080p input -> 1280x768")
    print(f"Machine: {describe()}; {rounds} rounds, lengths in alternating order.\n")
    print(
        "| output s | peak RSS MiB, median (range) | x the 10 s task | wall s | "
        "wall s per output s | x the 10 s task |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for seconds in lengths:
        rows = runs[seconds]
        peak = [r["peak_mib"] for r in rows]
        per_s = [r["per_s"] for r in rows]
        print(
            f"| {seconds} | {spread(peak, '{:.0f}')} | {statistics.median(peak) / base_peak:.2f}x "
            f"| {spread([r['wall_s'] for r in rows], '{:.1f}')} | {spread(per_s)} "
            f"| {statistics.median(per_s) / base_per_s:.2f}x |"
        )
    idle = statistics.median(r["idle_mib"] for rows in runs.values() for r in rows)
    print(f"\nThe server process before its task (after the upload): {idle:.0f} MiB.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lengths", default="10,30,60,120")
    parser.add_argument("--workdir", type=Path, help="keep the sources here between runs")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("ffmpeg not found: install it (apt-get install -y ffmpeg) to make the sources.")
        return 2
    lengths = sorted(int(value) for value in args.lengths.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        sources = {}
        for seconds in lengths:
            sources[seconds] = work / f"testsrc2_1080p_{seconds}s.mp4"
            if not sources[seconds].exists():
                print(f"making {sources[seconds]} ...", file=sys.stderr, flush=True)
                make_source(ffmpeg, sources[seconds], seconds)
        runs: dict[int, list[dict[str, float]]] = {seconds: [] for seconds in lengths}
        for round_index in range(args.rounds):
            order = lengths if round_index % 2 == 0 else lengths[::-1]
            for seconds in order:
                result = run_task(work, sources[seconds], seconds)
                runs[seconds].append(result)
                print(f"round {round_index + 1}, {seconds} s: {result}", file=sys.stderr)
        report(lengths, runs, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
