"""The fleet under faults, on real processes, PostgreSQL and a private Redis: a worker killed
mid-task, an API process killed (one of `--processes 2`, and the sweeper's leader among two
servers), the broker restarted with its queue lost, and a server killed mid-upload."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from tests.fleet.conftest import wait_worker, worker_env
from tests.harness import free_port, start_server
from tests.receiver import Receiver
from tests.services import Proc, RedisServer, wait_for, wait_healthy
from tests.videos import make_video
from vidmorph.config import Settings
from vidmorph.domain.clock import utcnow
from vidmorph.domain.states import TaskStatus
from vidmorph.store.db import Database
from vidmorph.store.tables import assets, deliveries, leases

pytestmark = pytest.mark.slow

SLOW = "tests.engines.fixtures:slow"
TOKEN = "user:1-faulttoken000000000000000"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def fleet_settings(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    """An API that only admits and dispatches (workers=0), with quick leases and sweeps."""
    values: dict[str, Any] = {
        "workers": 0,
        "lease_s": 2.0,
        "recover_interval_s": 0.5,
        "redispatch_s": 2.0,
        "worker_heartbeat_s": 0.5,
    }
    values.update(extra)
    return make_settings(**values)


def serve_env(data_dir: Path, port: int, **extra: Any) -> dict[str, Any]:
    """Settings of a spawned `vidmorph serve`."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": port,
        "api_token": TOKEN,
        "lease_s": 2.0,
        "recover_interval_s": 0.5,
        "redispatch_s": 2.0,
        "worker_heartbeat_s": 0.5,
        "callback_allow_private": "true",
        # The text classifier is no part of these faults, and costs each start seconds of CPU.
        "moderation_classifier": "false",
    }
    values.update(extra)
    return values


class Api:
    """A client of a spawned server; every request on a new connection, so a request never
    rides a kept-alive connection to a process that was killed."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.api = f"{self.base}/v1/runwayml"
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def upload(self, video: Path) -> str:
        resp = self.client.post(
            f"{self.api}/assets/",
            params={"name": video.stem},
            content=video.read_bytes(),
            headers={"Content-Type": "video/mp4"},
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["assetId"])

    def create(self, asset_id: str, prompt: str = "night") -> dict[str, Any]:
        resp = self.client.post(
            f"{self.api}/gen3/video", json={"assetId": asset_id, "text_prompt": prompt}
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def task(self, task_id: str) -> dict[str, Any]:
        resp = self.client.get(f"{self.api}/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def statuses(self, task_ids: list[str]) -> dict[str, str]:
        return {t: self.task(t)["status"] for t in task_ids}


@contextmanager
def api_client(port: int) -> Iterator[Api]:
    api = Api(port)
    try:
        yield api
    finally:
        api.client.close()


@contextmanager
def database(url: str) -> Iterator[Database]:
    db = Database(url)
    try:
        yield db
    finally:
        db.close()


def all_finished(api: Api, task_ids: list[str]) -> Callable[[], bool]:
    return lambda: all(s in TERMINAL for s in api.statuses(task_ids).values())


def sweeper_holder(db: Database) -> str | None:
    """Owner of the `sweeper` lease while it is held, else None."""
    with db.read() as conn:
        row = conn.execute(
            select(leases.c.owner, leases.c.expires_at).where(leases.c.name == "sweeper")
        ).one_or_none()
    if row is None or row.expires_at <= utcnow():
        return None
    return str(row.owner)


def held_by(db: Database, pid: int) -> bool:
    """True while process `pid` leads (sweeper owners are host:pid:api...)."""
    owner = sweeper_holder(db)
    return owner is not None and owner.split(":")[1] == str(pid)


def children(pid: int) -> set[int]:
    """Live child processes of `pid` (by the parent field of /proc/*/stat)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # fields: state, ppid, ...; a zombie is dead already
        if fields[1] == str(pid) and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def uvicorn_workers(supervisor: int) -> set[int]:
    """uvicorn's worker processes under `supervisor` (not multiprocessing's resource tracker)."""
    workers = set()
    for pid in children(supervisor):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            workers.add(pid)
    return workers


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_task_of_a_lost_worker_finishes_once_on_the_other_worker(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
    fault: str,
) -> None:
    """kill -9, or SIGSTOP past the lease and SIGCONT once the other worker is done: either
    way one output, one terminal callback (a woken stale run neither calls back nor writes)."""
    # redispatch_s is long: the lapsed-lease sweep alone must send the task to the survivor.
    settings = fleet_settings(
        make_settings,
        engine=SLOW,
        database_url=postgres_url,
        broker_url=broker.url,
        redispatch_s=600.0,
    )
    with start_server(settings) as live, Receiver() as hook:
        procs = {}
        for _ in range(2):
            proc = spawn("worker", "--engine", SLOW, "--concurrency", "1", **worker_env(settings))
            procs[proc.pid] = proc
        wait_worker(live.ctx, SLOW, count=2)
        asset = live.upload_video(tmp_path, seconds=3)
        resp = live.create(
            {"assetId": asset["assetId"], "text_prompt": "night", "replyUrl": f"{hook.url}/cb"}
        )
        assert resp.status_code == 200, resp.text
        uuid, task_id = resp.json()["id"], resp.json()["taskId"]

        holders: list[int] = []

        def running_on_a_worker() -> bool:
            """Mid-engine on a worker, by the task's lease and by that worker's own report."""
            task = live.ctx.tasks.get(uuid)
            if task is None or task.status is not TaskStatus.RUNNING or not task.lease_owner:
                return False
            if (task.progress_ratio or 0) < 0.2:
                return False
            for w in live.ctx.workers.live(30):
                if task.lease_owner.startswith(w.id + ":") and uuid in w.running:
                    holders.append(w.pid)
                    return True
            return False

        wait_for(running_on_a_worker, 60, "the task running on a worker", 0.05)
        victim = holders[-1]
        assert victim in procs, (victim, list(procs))
        if fault == "killed":
            procs[victim].kill9()
        else:
            os.kill(victim, signal.SIGSTOP)
        survivor = next(p for pid, p in procs.items() if pid != victim)

        done = live.wait_task(task_id, TERMINAL, timeout_s=60)
        assert done["status"] == "SUCCEEDED", (done, survivor.output()[-3000:])
        task = live.ctx.tasks.get(uuid)
        # Claimed twice: the killed run never finished, the survivor's did.
        assert task is not None and task.attempts == 2
        assert uuid in survivor.output()
        assert live.client.get(done["artifacts"][0]["url"]).status_code == 200
        with live.ctx.db.read() as conn:
            outputs = conn.execute(
                select(func.count()).select_from(assets).where(assets.c.task_uuid == uuid)
            ).scalar_one()
        assert outputs == 1

        # Every callback of the task sent (none left pending), then count the terminal ones.
        def sent_all() -> bool:
            with live.ctx.db.read() as conn:
                pending = conn.execute(
                    select(func.count())
                    .select_from(deliveries)
                    .where(deliveries.c.task_uuid == uuid, deliveries.c.state == "pending")
                ).scalar_one()
            got = [r.json()["status"] for r in hook.requests]
            return pending == 0 and "SUCCEEDED" in got

        wait_for(sent_all, 30, "the task's callbacks sent")
        if fault == "frozen":
            os.kill(victim, signal.SIGCONT)
            wait_for(
                lambda: "no longer ours" in procs[victim].output(),
                30,
                "the woken run to find the task is no longer its own",
            )
            time.sleep(1.5)  # a stray callback would be queued and sent by now
            wait_for(sent_all, 30, "no callback left pending")
        terminal = [r.json()["status"] for r in hook.requests if r.json()["status"] in TERMINAL]
        assert terminal == ["SUCCEEDED"], [r.json()["status"] for r in hook.requests]
        with live.ctx.db.read() as conn:
            queued = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.task_uuid == uuid, deliveries.c.terminal.is_(True))
            ).scalar_one()
        assert queued == 1


def test_killed_http_process_is_replaced_and_the_port_keeps_serving(
    tmp_path: Path,
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    port = free_port()
    env = serve_env(tmp_path / "data", port, database_url=postgres_url, broker_url=broker.url)
    server = spawn("serve", "--processes", "2", **env)
    spawn("worker", "--concurrency", "2", **env)
    video = make_video(tmp_path / "in.mp4", seconds=1)
    with api_client(port) as api:
        wait_healthy(api.base, server)
        wait_for(lambda: len(uvicorn_workers(server.pid)) == 2, 60, "two HTTP processes")
        first, second = sorted(uvicorn_workers(server.pid))
        asset_id = api.upload(video)
        admitted = [api.create(asset_id)["taskId"] for _ in range(3)]

        os.kill(first, 9)
        wait_for(lambda: gone(first), 10, f"process {first} to die")
        # The other process serves on the same port at once, on every new connection.
        for _ in range(10):
            assert api.client.get(f"{api.base}/healthz").status_code == 200
        admitted.append(api.create(asset_id)["taskId"])

        # uvicorn starts a replacement; with the other original killed too, it serves alone.
        wait_for(
            lambda: len(uvicorn_workers(server.pid) - {first, second}) == 1,
            30,
            "a replacement HTTP process",
        )
        os.kill(second, 9)
        wait_for(lambda: gone(second), 10, f"process {second} to die")
        # The connection waits in the port's backlog until the replacement has started.
        assert api.client.get(f"{api.base}/healthz", timeout=90).status_code == 200
        for _ in range(5):
            assert api.client.get(f"{api.base}/healthz").status_code == 200
        admitted.append(api.create(asset_id)["taskId"])

        wait_for(all_finished(api, admitted), 90, "every admitted task to finish")
        assert set(api.statuses(admitted).values()) == {"SUCCEEDED"}, server.output()[-3000:]
        assert server.alive()


def test_tasks_of_a_killed_server_are_sent_again_by_the_survivor(
    tmp_path: Path,
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    ports = [free_port(), free_port()]
    env = {"database_url": postgres_url, "broker_url": broker.url}
    servers = {port: spawn("serve", **serve_env(tmp_path / "data", port, **env)) for port in ports}
    video = make_video(tmp_path / "in.mp4", seconds=1)
    with database(postgres_url) as db, api_client(ports[0]) as one, api_client(ports[1]) as two:
        pairs = [(servers[ports[0]], one), (servers[ports[1]], two)]
        for proc, api in pairs:
            wait_healthy(api.base, proc)
        by_pid = {proc.pid: (proc, api) for proc, api in pairs}
        wait_for(lambda: any(held_by(db, pid) for pid in by_pid), 30, "a sweeper leader")
        leader_pid = next(pid for pid in by_pid if held_by(db, pid))
        leader, leader_api = by_pid[leader_pid]
        survivor, survivor_api = next(v for pid, v in by_pid.items() if pid != leader_pid)

        asset_id = leader_api.upload(video)
        admitted = [leader_api.create(asset_id)["taskId"] for _ in range(3)]
        # No worker yet, so they wait.
        assert set(survivor_api.statuses(admitted).values()) == {"PENDING"}
        leader.kill9()
        # And the broker loses what the leader sent, as if it had died between committing the
        # tasks and sending them; only a sweep can send them now, and the survivor's sweeper
        # cannot lead before the dead leader's lease lapses.
        redis.Redis.from_url(broker.url).flushall()

        worker = spawn("worker", **serve_env(tmp_path / "data", ports[0], **env))
        wait_for(lambda: held_by(db, survivor.pid), 30, "the survivor to take the lead")
        wait_for(all_finished(survivor_api, admitted), 60, "the dead server's tasks to finish")
        assert set(survivor_api.statuses(admitted).values()) == {"SUCCEEDED"}, (
            survivor.output()[-3000:],
            worker.output()[-3000:],
        )


def test_tasks_survive_a_broker_restart_and_the_worker_reconnects(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    settings = fleet_settings(
        make_settings, engine=SLOW, database_url=postgres_url, broker_url=broker.url, lease_s=3.0
    )
    with start_server(settings) as live:
        worker = spawn("worker", "--engine", SLOW, "--concurrency", "1", **worker_env(settings))
        wait_worker(live.ctx, SLOW)
        asset = live.upload_video(tmp_path, seconds=1)
        body = {"assetId": asset["assetId"], "text_prompt": "night"}
        ids = [live.create(body).json()["id"] for _ in range(4)]

        def status_of(uuid: str) -> TaskStatus:
            task = live.ctx.tasks.get(uuid)
            assert task is not None
            return task.status

        wait_for(lambda: any(status_of(u) is TaskStatus.RUNNING for u in ids), 60, "a task to run")
        waiting = [u for u in ids if status_of(u) is TaskStatus.PENDING]
        assert len(waiting) >= 2, [status_of(u) for u in ids]
        broker.restart()  # nothing on disk: every queued message is gone

        # Admission carries on with the new broker, and so does the worker.
        ids.append(live.create(body).json()["id"])
        wait_for(
            lambda: all(status_of(u) in {TaskStatus.SUCCEEDED, TaskStatus.FAILED} for u in ids),
            90,
            "every task to finish",
        )
        finished = [status_of(u) for u in ids]
        assert finished == [TaskStatus.SUCCEEDED] * len(ids), worker.output()[-3000:]
        assert worker.alive()
        assert [w.pid for w in live.ctx.workers.live(30)] == [worker.pid]


def test_killed_upload_leaves_a_scratch_folder_that_the_next_start_removes(
    tmp_path: Path,
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = serve_env(data_dir, port, database_url=postgres_url, broker_url=broker.url)
    server = spawn("serve", **env)
    with api_client(port) as api:
        wait_healthy(api.base, server)
    scratch = data_dir / "tmp"
    mine = [d for d in scratch.iterdir() if d.name.split("~")[1] == str(server.pid)]
    assert len(mine) == 1, list(scratch.iterdir())
    folder = mine[0]

    def upload_size() -> int:
        return sum(f.stat().st_size for f in folder.glob("upload-*"))

    total, chunk = 64 * 2**20, b"\0" * 2**16
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            (
                "POST /v1/runwayml/assets/?name=big HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\n"
                "Content-Type: video/mp4\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
        )
        sent = 0
        deadline = time.monotonic() + 20
        # Stream until the server has written a good part of it to its scratch folder.
        while upload_size() < 2**20:
            assert time.monotonic() < deadline, "the upload never reached the scratch folder"
            conn.sendall(chunk)
            sent += len(chunk)
            time.sleep(0.005)
        assert sent < total
        server.kill9()
    assert upload_size() >= 2**20  # the dead process's partial upload is left behind

    # Another live process's folder on this host must survive the clean-up.
    host = folder.name.split("~")[0]
    alive = scratch / f"{host}~{os.getpid()}~alive0"
    alive.mkdir()
    again = spawn("serve", **env)
    with api_client(port) as api:
        wait_healthy(api.base, again)
    assert not folder.exists()
    assert alive.is_dir()
    assert [d.name.split("~")[1] for d in scratch.iterdir() if d != alive] == [str(again.pid)]
