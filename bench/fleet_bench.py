"""Fleet benchmark: preview throughput with 2 Celery workers against 1, and submit-to-RUNNING
latency through Celery against the in-process dispatcher, measured in the same run.

Everything is real and local: a fresh PostgreSQL database per round on 127.0.0.1:5432, a private
redis-server as the broker, `vidmorph serve` and `vidmorph worker` as subprocesses, the preview
engine on 1 s inputs. Rounds alternate the two sides; medians and ranges are printed.

    .venv/bin/python bench/fleet_bench.py [--rounds 3] [--tasks 12] [--latency-tasks 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness import free_port, fresh_postgres_url  # noqa: E402
from tests.services import Proc, redis_server, vidmorph_env, wait_healthy  # noqa: E402
from tests.videos import make_video  # noqa: E402

from vidmorph.config import Settings  # noqa: E402
from vidmorph.container import build_context  # noqa: E402

TOKEN = "user:1-fleetbenchtoken00000000000000"


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (all their threads) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


@contextmanager
def fleet(
    work: Path, workers: int, *, broker: bool = True
) -> Iterator[tuple[httpx.Client, str, str, list[int]]]:
    """A fresh database, (a broker), an API and `workers` Celery workers (or, without a broker,
    the embedded default's one in-process worker thread)."""
    with ExitStack() as stack:
        db_url = stack.enter_context(fresh_postgres_url())
        port = free_port()
        settings = {
            "database_url": db_url,
            "data_dir": str(work / f"data-{port}"),
            "api_token": TOKEN,
            "port": str(port),
            "worker_heartbeat_s": "0.5",
            "max_user_tasks": "0",  # one user stands for the many a fleet serves
        }
        if broker:
            redis = stack.enter_context(redis_server(work / f"redis-{port}"))
            settings.update(broker_url=redis.url, workers="0")
        procs: list[Proc] = []
        stack.callback(lambda: [p.stop() for p in procs])
        api = Proc(["serve"], vidmorph_env(**settings), work / f"serve-{port}.log")
        procs.append(api)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, api)
        if broker:
            for n in range(workers):
                procs.append(
                    Proc(["worker"], vidmorph_env(**settings), work / f"worker-{port}-{n}.log")
                )
            ctx = build_context(Settings(database_url=db_url, data_dir=work / "probe"))
            deadline = time.monotonic() + 60
            while len(ctx.workers.live(10)) < workers and time.monotonic() < deadline:
                time.sleep(0.1)
            ctx.db.close()
        client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        stack.callback(client.close)
        yield client, f"{base}/v1/runwayml", db_url, [p.pid for p in procs[1:]]


def upload(client: httpx.Client, api: str, video: Path) -> str:
    resp = client.post(
        f"{api}/assets/?name=in", content=video.read_bytes(), headers={"Content-Type": "video/mp4"}
    )
    resp.raise_for_status()
    return str(resp.json()["assetId"])


def submit(client: httpx.Client, api: str, asset_id: str, n: int) -> str:
    resp = client.post(
        f"{api}/gen3/video",
        json={"assetId": asset_id, "text_prompt": f"neon night {n}", "seed": n + 1, "maxJobs": 10},
    )
    resp.raise_for_status()
    return str(resp.json()["taskId"])


def wait_all(client: httpx.Client, api: str, task_ids: list[str]) -> list[dict[str, object]]:
    done: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 600
    while len(done) < len(task_ids) and time.monotonic() < deadline:
        for tid in task_ids:
            if tid not in done:
                body = client.get(f"{api}/tasks/{tid}").json()
                if body["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    done[tid] = body
        time.sleep(0.1)
    assert all(b["status"] == "SUCCEEDED" for b in done.values()), done
    return [done[t] for t in task_ids]


def throughput(work: Path, video: Path, workers: int, tasks: int) -> tuple[float, float]:
    """Preview tasks per minute, from the first submit to the last task done, and the cores
    the workers kept busy meanwhile (their CPU seconds over the wall seconds)."""
    with fleet(work, workers) as (client, api, _, worker_pids):
        asset_id = upload(client, api, video)
        wait_all(client, api, [submit(client, api, asset_id, 10_000)])  # warm: engine, caches
        cpu0, t0 = cpu_s(worker_pids), time.perf_counter()
        ids = [submit(client, api, asset_id, n) for n in range(tasks)]
        wait_all(client, api, ids)
        wall = time.perf_counter() - t0
        return tasks / wall * 60, (cpu_s(worker_pids) - cpu0) / wall


def latencies(work: Path, video: Path, broker: bool, count: int) -> list[float]:
    """Milliseconds from admission (the task row's createdAt) to RUNNING (its started_at), one task
    at a time on an idle worker."""
    with fleet(work, 1, broker=broker) as (client, api, db_url, _):
        asset_id = upload(client, api, video)
        wait_all(client, api, [submit(client, api, asset_id, 10_000)])
        ids = []
        for n in range(count):
            ids.append(submit(client, api, asset_id, n))
            wait_all(client, api, ids[-1:])
        ctx = build_context(Settings(database_url=db_url, data_dir=work / "probe-lat"))
        out = []
        for tid in ids:
            task = ctx.tasks.get(tid.rsplit("-task:", 1)[1])
            assert task is not None and task.started_at is not None
            out.append((task.started_at - task.created_at).total_seconds() * 1000)
        ctx.db.close()
        return out


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (range {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10, help="at most maxJobs (10)")
    parser.add_argument("--latency-tasks", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        work = Path(tmp)
        video = make_video(work / "in.mp4", seconds=1, size=(640, 384))
        one: list[float] = []
        two: list[float] = []
        busy: dict[int, list[float]] = {1: [], 2: []}
        celery: list[float] = []
        inproc: list[float] = []
        for r in range(args.rounds):
            # Alternate which side goes first, so drift on a shared machine hits both.
            for side in (1, 2) if r % 2 == 0 else (2, 1):
                rate, cores = throughput(work, video, side, args.tasks)
                (one if side == 1 else two).append(rate)
                busy[side].append(cores)
                print(
                    f"round {r}: {side} worker(s): {rate:.1f} tasks/min,"
                    f" workers kept {cores:.2f} cores busy",
                    flush=True,
                )
            for broker in (True, False) if r % 2 == 0 else (False, True):
                lat = latencies(work, video, broker, args.latency_tasks)
                (celery if broker else inproc).extend(lat)
                name = "celery" if broker else "in-process"
                print(f"round {r}: {name}: submit->RUNNING {spread(lat)} ms", flush=True)
        ratio = [b / a for a, b in zip(one, two, strict=True)]
        added_ms = statistics.median(celery) - statistics.median(inproc)
        result = {
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "tasks_per_min_1_worker": spread(one),
            "tasks_per_min_2_workers": spread(two),
            "ratio_2_over_1": spread(ratio),
            "cores_busy_1_worker": spread(busy[1]),
            "cores_busy_2_workers": spread(busy[2]),
            "submit_to_running_ms_celery": spread(celery),
            "submit_to_running_ms_inprocess": spread(inproc),
            "celery_adds_ms_median": round(added_ms, 1),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
