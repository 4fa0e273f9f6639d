"""HTTP tier benchmark: the hot paths against /healthz and /healthz against bare FastAPI.

Measured with wrk (Debian's package `wrk`), 32 keep-alive connections, in one run:

- GET /healthz of `vidmorph serve` and of a bare FastAPI app under the same uvicorn
  settings (`bench/bare_app.py`);
- POST /gen3/video of that bare app: a pydantic body and an answer of the task's shape, no
  service work (the framework's own cost of a create);
- GET /tasks/{taskId} of a PENDING task, and POST /gen3/video, on SQLite and on PostgreSQL;
- on PostgreSQL, POST throughput of `vidmorph serve --processes 2` against `--processes 1`.

Servers admit only (VIDMORPH_WORKERS=0). Each POST phase gets fresh accounts (maxJobs 10, one
asset each, written straight into the database) so no account fills, and the queue is emptied
between phases. Rounds alternate the order of the phases; medians and ranges are printed.
Statements per request are counted at the driver (tests/statements.py) on an in-process
server over the same database, through real HTTP; BEGIN/COMMIT are not counted.

    apt-get install wrk
    .venv/bin/python bench/admission_bench.py [--rounds 3] [--seconds 5] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from tests.harness import free_port, fresh_postgres_url, start_server  # noqa: E402
from tests.services import Proc, vidmorph_env, wait_healthy  # noqa: E402
from tests.statements import Statements, counted  # noqa: E402
from tests.videos import make_video  # noqa: E402

from vidmorph.config import Settings  # noqa: E402
from vidmorph.domain.clock import utcnow  # noqa: E402
from vidmorph.domain.ids import format_id, new_uuid  # noqa: E402
from vidmorph.store.tables import accounts, assets  # noqa: E402

TOKEN = "user:1-benchtoken000000000000000000"
API = "/v1/runwayml"
#: accounts made for each POST phase: 10 admissions each, more than a phase makes
ACCOUNTS_PER_PHASE = 6000
#: --src: another checkout's src/ to serve instead (an earlier commit, measured the same way)
SOURCE: Path | None = None
#: --max-user-tasks: the per-user cap the servers run with; 0 (off) by default, since the
#: benchmark's one user stands for the many a fleet serves
MAX_USER_TASKS = 0


def _env(env: dict[str, str]) -> dict[str, str]:
    if SOURCE is not None:
        env["PYTHONPATH"] = f"{SOURCE}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return env


def wrk(url: str, seconds: float, connections: int, script: Path | None = None) -> dict[str, float]:
    """One wrk run; its requests per second and latency percentiles (ms)."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency"]
    args += ["-H", f"Authorization: Bearer {TOKEN}"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests:\n{out}")
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        result[f"p{pct}_ms"] = float(m.group(1)) * scale
    return result


def post_script(path: Path, asset_ids: list[str]) -> Path:
    """A wrk script that posts a create for each asset id, ten times over, in turn."""
    bodies = [
        json.dumps({"assetId": a, "text_prompt": f"the same street at night, take {i}"})
        for i, a in enumerate(asset_ids)
    ]
    lua = "bodies = {" + ",".join(json.dumps(b) for b in bodies) + "}\n"
    lua += (
        "n = 0\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])\n"
        "end\n"
    )
    path.write_text(lua)
    return path


class Database:
    """Direct access for set-up between phases (what a bench may do and a client may not)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def fresh_accounts(self, source_asset_uuid: str, n: int) -> list[str]:
        """`n` new accounts of user 1 with a copy of the source asset each; their asset ids."""
        with self.engine.begin() as conn:
            src = conn.execute(select(assets).where(assets.c.uuid == source_asset_uuid)).one()
            now, tag = utcnow(), new_uuid()[:8]
            emails = [f"b{tag}{i}@bench.local" for i in range(n)]
            conn.execute(
                insert(accounts),
                [
                    dict(
                        user_id=1,
                        email=e,
                        max_jobs=10,
                        plan="standard",
                        num_plan_credits=10**9,
                        credits_used=0,
                        suspended=False,
                        created_at=now,
                        updated_at=now,
                    )
                    for e in emails
                ],
            )
            rows = [
                {**src._asdict(), "uuid": new_uuid(), "email": e, "created_at": now} for e in emails
            ]
            conn.execute(insert(assets), rows)
        if self.engine.dialect.name == "postgresql":
            # Thousands of rows at once: the planner's figures, until autovacuum analyses the
            # tables (within a minute), still say they are tiny, and PostgreSQL would scan
            # them in full on every poll (measured: 200 polls/s instead of 3,000). A real
            # deployment grows them gradually; the bench analyses at once.
            with self.engine.connect() as conn:
                conn.execute(text("ANALYZE accounts, assets, tasks"))
        return [format_id(1, r["email"], "asset", r["uuid"]) for r in rows]

    def empty_queue(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE tasks SET status = 'CANCELLED' WHERE status IN ('PENDING','RUNNING')")
            )
            if SOURCE is None:  # a tree from before the counter row has none
                conn.execute(text("UPDATE counters SET value = 0 WHERE name = 'in_flight'"))


@contextmanager
def serve(work: Path, db_url: str, processes: int = 1) -> Iterator[str]:
    port = free_port()
    env = vidmorph_env(
        data_dir=str(work / "data"),
        database_url=db_url,
        port=str(port),
        api_token=TOKEN,
        workers="0",
        max_queue_depth="10000000",
        max_user_tasks=str(MAX_USER_TASKS),
    )
    proc = Proc(["serve", "--processes", str(processes)], _env(env), work / f"serve-{port}.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc)
        yield base
    finally:
        proc.stop()


@contextmanager
def bare_app(work: Path) -> Iterator[str]:
    port = free_port()
    log = (work / "bare.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_app.py"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the baseline is always this tree's
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                subprocess.run(["sleep", "0.1"])
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def upload_and_task(base: str, video: Path) -> tuple[str, str, str]:
    """An uploaded asset (its id and uuid) and one PENDING task id on the server."""
    client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    asset = client.post(
        f"{base}{API}/assets/",
        params={"name": "b", "email": "default@vidmorph.local"},
        content=video.read_bytes(),
        headers={"Content-Type": "video/mp4"},
    ).json()
    task = client.post(
        f"{base}{API}/gen3/video", json={"assetId": asset["assetId"], "text_prompt": "warm up"}
    )
    assert task.status_code == 200, task.text
    return asset["assetId"], asset["id"], task.json()["taskId"]


def count_statements(settings: Settings, asset_uuid: str, n: int = 100) -> dict[str, float]:
    """Statements per GET /tasks/{id} (PENDING) and per POST /gen3/video over real HTTP on an
    in-process server, counted at the driver (tests/statements.py: SQLite's trace callback, a
    counting psycopg cursor), BEGIN/COMMIT and idle pings apart; averaged over `n` requests."""
    with start_server(settings) as live:
        db = Database(settings.database_url)
        ids = db.fresh_accounts(asset_uuid, n // 10 + 2)
        task_id = live.create({"assetId": ids[-1], "text_prompt": "warm up"}).json()["taskId"]
        with counted(live.ctx.db) as seen:

            def measure(call: Callable[[int], None]) -> dict[str, float]:
                call(-1)  # a pooled connection again, as a steady poller sees it
                start = len(seen)
                for i in range(n):
                    call(i)
                got = Statements(seen[start:])
                tx = got.transactions()
                return {
                    "statements": len(got.work()) / n,
                    "pings": got.pings() / n,
                    "in_tx": sum(len(t) for t in tx) / max(len(tx), 1),
                }

            def get(_: int) -> None:
                assert live.client.get(f"{live.api}/tasks/{task_id}").status_code == 200

            def post(i: int) -> None:
                body = {"assetId": ids[(i + 1) // 10], "text_prompt": f"p{i}"}
                assert live.create(body).status_code == 200

            counts = {"get": measure(get), "post": measure(post)}
        db.engine.dispose()
    return {
        "get": counts["get"]["statements"],
        "get_pings": counts["get"]["pings"],
        "post": counts["post"]["statements"],
        "post_tx": counts["post"]["in_tx"],
        "post_pings": counts["post"]["pings"],
    }


def summary(values: list[float], fmt: str = "{:.0f}") -> str:
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


@contextmanager
def database_url(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / kind / 'data' / 'vidmorph.db'}"
    else:
        with fresh_postgres_url() as url:
            yield url


def run_db(kind: str, work: Path, rounds: int, seconds: float, conns: int, video: Path) -> None:
    (work / kind).mkdir(exist_ok=True)
    res: dict[str, list[dict[str, float]]] = {
        "healthz": [],
        "bare": [],
        "get": [],
        "post": [],
        "bare_post": [],
    }
    with database_url(kind, work) as db_url:
        db = Database(db_url)
        with serve(work / kind, db_url) as base, bare_app(work / kind) as bare:
            _, asset_uuid, _ = upload_and_task(base, video)
            phases = {
                "healthz": lambda: wrk(f"{base}/healthz", seconds, conns),
                "bare": lambda: wrk(f"{bare}/healthz", seconds, conns),
                "get": lambda: get_phase(db, base, asset_uuid, seconds, conns),
                "post": lambda: post_phase(db, base, asset_uuid, seconds, conns, work),
                "bare_post": lambda: bare_post_phase(bare, seconds, conns, work),
            }
            for r in range(rounds):
                for name in list(phases) if r % 2 == 0 else list(reversed(phases)):
                    res[name].append(phases[name]())
                    print(f"  round {r + 1} {name}: {res[name][-1]}", file=sys.stderr)
        db.empty_queue()
        settings = Settings(
            data_dir=work / kind / "data",
            database_url=db_url,
            workers=0,
            api_token=TOKEN,
            max_queue_depth=10**7,
            max_user_tasks=MAX_USER_TASKS,
        )
        counts = count_statements(settings, asset_uuid) if SOURCE is None else {}
        db.engine.dispose()
    report(kind, res, counts)


def get_phase(
    db: Database, base: str, asset_uuid: str, seconds: float, conns: int
) -> dict[str, float]:
    """Polls of a task that is PENDING for the whole phase (a POST phase before it filled the
    queue, and emptying it cancels every task in flight): a new one, first in line."""
    db.empty_queue()
    asset_id = db.fresh_accounts(asset_uuid, 1)[0]
    client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    task = client.post(f"{base}{API}/gen3/video", json={"assetId": asset_id, "text_prompt": "poll"})
    assert task.status_code == 200, task.text
    url = f"{base}{API}/tasks/{task.json()['taskId']}"
    assert client.get(url).json()["status"] == "PENDING"
    out = wrk(url, seconds, conns)
    assert client.get(url).json()["status"] == "PENDING"
    return out


def post_phase(
    db: Database, base: str, asset_uuid: str, seconds: float, conns: int, work: Path
) -> dict[str, float]:
    db.empty_queue()
    ids = db.fresh_accounts(asset_uuid, ACCOUNTS_PER_PHASE)
    return wrk(f"{base}{API}/gen3/video", seconds, conns, post_script(work / "post.lua", ids))


def bare_post_phase(bare: str, seconds: float, conns: int, work: Path) -> dict[str, float]:
    """The same POSTs (bodies of the same shape) to the bare app's route: the framework's own
    cost of a create's exchange."""
    ids = [f"user:1-bench{i}@bench.local-asset:{new_uuid()}" for i in range(ACCOUNTS_PER_PHASE)]
    return wrk(f"{bare}{API}/gen3/video", seconds, conns, post_script(work / "bare.lua", ids))


def report(kind: str, res: dict[str, list[dict[str, float]]], counts: dict[str, float]) -> None:
    health = [r["rps"] for r in res["healthz"]]
    print(f"\n## {kind}: medians (ranges) of {len(health)} rounds")
    print("| request | req/s | p50 ms | p99 ms | ratio to /healthz | statements |")
    print("|---|---|---|---|---|---|")
    labels = {
        "bare": "GET /healthz, one-route FastAPI",
        "healthz": "GET /healthz",
        "get": "GET /tasks/{taskId} (PENDING)",
        "post": "POST /gen3/video",
        "bare_post": "POST /gen3/video, bare FastAPI route",
    }
    stmts = {}
    if counts:
        in_tx = "" if kind != "sqlite" else f", {counts['post_tx']:.2f} in its transaction"
        stmts = {"get": f"{counts['get']:.2f}", "post": f"{counts['post']:.2f}{in_tx}"}
    for name, label in labels.items():
        rps = [r["rps"] for r in res[name]]
        ratios = [a / b for a, b in zip(rps, health, strict=True)]
        print(
            f"| {label} | {summary(rps)} | {summary([r['p50_ms'] for r in res[name]], '{:.1f}')} "
            f"| {summary([r['p99_ms'] for r in res[name]], '{:.1f}')} | "
            f"{summary(ratios, '{:.2f}')} | {stmts.get(name, '-')} |"
        )
    bare = [r["rps"] for r in res["bare"]]
    ratios = [a / b for a, b in zip(health, bare, strict=True)]
    print(f"/healthz against bare FastAPI: {summary(ratios, '{:.2f}')}")
    posts = [r["rps"] for r in res["post"]]
    bare_posts = [r["rps"] for r in res["bare_post"]]
    ratios = [a / b for a, b in zip(posts, bare_posts, strict=True)]
    print(f"POST /gen3/video against the bare FastAPI route: {summary(ratios, '{:.2f}')}")


def run_processes(work: Path, rounds: int, seconds: float, conns: int, video: Path) -> None:
    """POST throughput on PostgreSQL: `--processes 2` against `--processes 1`, alternating."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    p99: dict[int, list[float]] = {1: [], 2: []}
    with fresh_postgres_url() as db_url:
        db = Database(db_url)
        for r in range(rounds):
            for procs in (1, 2) if r % 2 == 0 else (2, 1):
                (work / f"p{procs}").mkdir(exist_ok=True)
                with serve(work / f"p{procs}", db_url, procs) as base:
                    _, asset_uuid, _ = upload_and_task(base, video)
                    post_phase(db, base, asset_uuid, 1, conns, work)  # warm every process
                    out = post_phase(db, base, asset_uuid, seconds, conns, work)
                rates[procs].append(out["rps"])
                p99[procs].append(out["p99_ms"])
    ratios = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    print("\n## PostgreSQL, POST /gen3/video by server processes")
    print("| processes | req/s | p99 ms |")
    print("|---|---|---|")
    for procs in (1, 2):
        print(f"| {procs} | {summary(rates[procs])} | {summary(p99[procs], '{:.1f}')} |")
    print(f"2 processes against 1: {summary(ratios, '{:.2f}')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--no-processes", action="store_true", help="skip the 1-vs-2 processes")
    parser.add_argument("--src", type=Path, help="serve this src/ (an earlier checkout) instead")
    parser.add_argument(
        "--max-user-tasks",
        type=int,
        default=0,
        help="the per-user cap (0: off); on, one user's creates on PostgreSQL take turns",
    )
    args = parser.parse_args()
    global SOURCE, MAX_USER_TASKS
    SOURCE = args.src
    MAX_USER_TASKS = args.max_user_tasks
    print(f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}")
    print(f"wrk -t1 -c{args.connections}, {args.seconds:.0f} s per phase, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = make_video(work / "in.mp4", seconds=1)
        for kind in args.db.split(","):
            run_db(kind, work, args.rounds, args.seconds, args.connections, video)
        if not args.no_processes and "postgres" in args.db:
            run_processes(work, args.rounds, args.seconds, args.connections, video)


if __name__ == "__main__":
    main()
