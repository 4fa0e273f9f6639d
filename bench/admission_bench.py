"""Admission benchmark: POST /gen3/video throughput and p99 at 32 clients vs GET /healthz.

Starts `vidmorph serve` (SQLite, admit-only: VIDMORPH_WORKERS=0) as a subprocess, then drives
it with 32 keep-alive connections from a small asyncio HTTP/1.1 client (httpx itself would be the
bottleneck on 2 cores). Each admission client posts a task and cancels it (DELETE) so its
account never fills up; only the POST latencies are counted. The baseline is the same server's
/healthz with the same clients, measured in the same run.

    .venv/bin/python bench/admission_bench.py [--clients 32] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.videos import make_video  # noqa: E402

TOKEN = "user:1-benchtoken000000000000000000"
PROMPTS = [f"the same street, but at night in the rain, take {i}" for i in range(64)]


class Conn:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for this server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length) if length else b""


async def healthz_client(port: int, stop_at: float, lat: list[float]) -> None:
    conn = await Conn.open(port)
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        status, _ = await conn.request("GET", "/healthz")
        lat.append(time.perf_counter() - t0)
        assert status == 200


async def admit_client(port: int, asset_id: str, stop_at: float, lat: list[float], n: int) -> None:
    conn = await Conn.open(port)
    i = n
    while time.perf_counter() < stop_at:
        body = json.dumps({"assetId": asset_id, "text_prompt": PROMPTS[i % len(PROMPTS)]})
        i += 1
        t0 = time.perf_counter()
        status, payload = await conn.request("POST", "/v1/runwayml/gen3/video", body.encode())
        lat.append(time.perf_counter() - t0)
        assert status == 200, payload[:300]
        task_id = json.loads(payload)["taskId"]
        status, _ = await conn.request("DELETE", f"/v1/runwayml/tasks/{task_id}")
        assert status == 204


async def run_phase(
    kind: str, port: int, clients: int, seconds: float, assets: list[str]
) -> dict[str, float]:
    lat: list[float] = []
    warm_stop = time.perf_counter() + 1.0
    stop_at = warm_stop + seconds
    if kind == "healthz":
        jobs = [healthz_client(port, warm_stop, []) for _ in range(clients)]
    else:
        jobs = [admit_client(port, assets[c], warm_stop, [], c) for c in range(clients)]
    await asyncio.gather(*jobs)  # warm-up second, not counted
    if kind == "healthz":
        jobs = [healthz_client(port, stop_at, lat) for _ in range(clients)]
    else:
        jobs = [admit_client(port, assets[c], stop_at, lat, c) for c in range(clients)]
    t0 = time.perf_counter()
    await asyncio.gather(*jobs)
    elapsed = time.perf_counter() - t0
    lat.sort()
    return {
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDMORPH_")}
    env.update(
        VIDMORPH_DATA_DIR=str(data_dir),
        VIDMORPH_PORT=str(port),
        VIDMORPH_API_TOKEN=TOKEN,
        VIDMORPH_WORKERS="0",
        VIDMORPH_MAX_QUEUE_DEPTH="100000",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidmorph", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def setup_accounts(port: int, clients: int, video: Path) -> list[str]:
    """One account per client (maxJobs 10), each with its own uploaded asset."""
    api = f"http://127.0.0.1:{port}/v1/runwayml"
    client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    assets = []
    for c in range(clients):
        email = f"bench{c}@vidmorph.local"
        client.post(f"{api}/accounts/{email}", json={"maxJobs": 10, "numPlanCredits": 10**9})
        resp = client.post(
            f"{api}/assets/",
            params={"name": "b", "email": email},
            content=video.read_bytes(),
            headers={"Content-Type": "video/mp4"},
        )
        assets.append(resp.json()["assetId"])
    # The first check loads the moderation classifier; do it before timing.
    client.post(f"{api}/gen3/video", json={"assetId": assets[0], "text_prompt": "warm up"})
    return assets


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_server(Path(tmp) / "data", port)
        try:
            video = make_video(Path(tmp) / "in.mp4", seconds=1)
            assets = setup_accounts(port, args.clients, video)
            health = asyncio.run(run_phase("healthz", port, args.clients, args.seconds, assets))
            admit = asyncio.run(run_phase("admit", port, args.clients, args.seconds, assets))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ratio = admit["rps"] / health["rps"]
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"clients: {args.clients}, {args.seconds:.0f} s per phase, SQLite, admit-only server")
    print("| phase | requests | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, r in (("GET /healthz (baseline)", health), ("POST /gen3/video", admit)):
        print(
            f"| {name} | {r['requests']:.0f} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} |"
        )
    print(
        f"ratio POST/healthz throughput: {ratio:.2f} (aim >= 0.5); "
        f"POST p99 {admit['p99_ms']:.1f} ms (aim < 25)"
    )


if __name__ == "__main__":
    main()
