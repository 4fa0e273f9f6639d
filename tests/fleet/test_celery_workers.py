"""`vidmorph worker` on Celery over a real Redis: the API dispatches, workers run, queues per
engine, explore mode last, submit via PostgreSQL, nothing run by the API process itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.fleet.conftest import wait_worker, worker_env
from tests.harness import start_server
from tests.receiver import Receiver
from tests.services import Proc, RedisServer
from vidmorph.config import Settings

SLOW = "tests.engines.fixtures:slow"


def fleet_settings(make_settings: Callable[..., Settings], **extra: object) -> Settings:
    return make_settings(workers=0, redispatch_s=2.0, worker_heartbeat_s=0.5, **extra)


def test_worker_runs_the_task_the_api_dispatched(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    settings = fleet_settings(make_settings, database_url=postgres_url, broker_url=broker.url)
    with start_server(settings) as live, Receiver() as hook:
        assert not live.services.dispatcher.runs_tasks
        worker = spawn("worker", **worker_env(settings))
        wait_worker(live.ctx, "preview")
        asset = live.upload_video(tmp_path, seconds=1)
        resp = live.create(
            {"assetId": asset["assetId"], "text_prompt": "night", "replyUrl": hook.url}
        )
        assert resp.status_code == 200, resp.text
        done = live.wait_task(resp.json()["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=90)
        assert done["status"] == "SUCCEEDED", (done, worker.output()[-3000:])
        assert live.client.get(done["artifacts"][0]["url"]).status_code == 200
        assert hook.wait_for(
            lambda reqs: any(r.json()["status"] == "SUCCEEDED" for r in reqs), timeout_s=30
        )
        # The API process never loaded an engine: the worker ran it.
        assert live.ctx._engines == {}
        assert f"task {resp.json()['id']} running on" in worker.output()


def test_each_engine_has_its_queue_and_explore_mode_runs_last(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    settings = fleet_settings(
        make_settings,
        database_url=postgres_url,
        broker_url=broker.url,
        task_engines={"gen3a_turbo": SLOW},
    )
    with start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        body = {"assetId": asset["assetId"], "text_prompt": "night"}
        # No worker for the slow engine yet: its turbo task waits while preview work runs.
        spawn("worker", "--engine", "preview", **worker_env(settings))
        wait_worker(live.ctx, "preview")
        turbo = live.create(body, route="gen3turbo/video").json()
        plain = live.create(body).json()
        done = live.wait_task(plain["taskId"], {"SUCCEEDED"}, timeout_s=90)
        assert done["status"] == "SUCCEEDED"
        assert live.client.get(f"{live.api}/tasks/{turbo['taskId']}").json()["status"] == "PENDING"

        # One slow worker thread, three tasks queued behind a running one: the explore-mode
        # task was sent first but runs last.
        blocker = live.create(body, route="gen3turbo/video").json()
        explore = live.create({**body, "exploreMode": True}, route="gen3turbo/video").json()
        normal = [live.create(body, route="gen3turbo/video").json() for _ in range(2)]
        spawn("worker", "--engine", SLOW, "--concurrency", "1", **worker_env(settings))
        ids = [turbo, blocker, explore, *normal]
        finished = [live.wait_task(t["taskId"], {"SUCCEEDED"}, timeout_s=120) for t in ids]
        assert all(f["status"] == "SUCCEEDED" for f in finished), finished
        started = {t["taskId"]: live.ctx.tasks.get(t["id"]).started_at for t in ids}  # type: ignore[union-attr]
        assert started[explore["taskId"]] > max(started[t["taskId"]] for t in normal)
