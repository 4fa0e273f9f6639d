"""What operators see: /metrics (Prometheus, fleet-wide figures from the database), /readyz
(503 while the database, broker or storage is unreachable), the worker registry, and the
pre-flight check and ETA fed by what remote workers publish. Also RabbitMQ as the broker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.fleet.conftest import wait_worker, worker_env
from tests.harness import PG_ADMIN_URL, LiveServer, start_server
from tests.receiver import Receiver
from tests.services import Proc, RedisServer, S3Endpoint, wait_for
from vidmorph.config import Settings
from vidmorph.service import fleet


def samples(live: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = live.client.get(f"{live.base_url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_metrics_count_tasks_stages_callbacks_and_workers(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    with start_server(make_settings()) as live, Receiver() as hook:
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create(
            {"assetId": asset["assetId"], "text_prompt": "night", "replyUrl": hook.url}
        ).json()
        assert live.wait_task(task["taskId"], {"SUCCEEDED"})["status"] == "SUCCEEDED"
        assert hook.wait_for(
            lambda reqs: any(r.json()["status"] == "SUCCEEDED" for r in reqs), timeout_s=20
        )
        wait_for(
            lambda: (
                samples(live).get(
                    ("vidmorph_callback_deliveries_total", (("outcome", "delivered"),)), 0
                )
                >= 1
            ),
            10,
            "the delivery counted",
        )
        got = samples(live)
        assert got[("vidmorph_tasks", (("engine", "preview"), ("status", "SUCCEEDED")))] == 1
        assert got[("vidmorph_queue_depth", (("engine", "preview"),))] == 0
        assert got[("vidmorph_workers_live", (("engine", "preview"),))] == 1
        duration = (("engine", "preview"), ("status", "SUCCEEDED"))
        assert got[("vidmorph_task_duration_seconds_count", duration)] == 1
        assert got[("vidmorph_task_duration_seconds_sum", duration)] > 0
        for stage in ("decode", "engine", "encode"):
            labels = (("engine", "preview"), ("stage", stage))
            assert got[("vidmorph_stage_duration_seconds_count", labels)] == 1
        assert got[("vidmorph_queue_wait_seconds_count", (("engine", "preview"),))] == 1
        inf_labels = tuple(sorted((*duration, ("le", "+Inf"))))
        inf = got[("vidmorph_task_duration_seconds_bucket", inf_labels)]
        assert inf == 1


def test_every_api_process_reports_the_same_fleet_figures(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    settings = make_settings(
        workers=0, database_url=postgres_url, broker_url=broker.url, worker_heartbeat_s=0.5
    )
    with start_server(settings) as one, start_server(settings) as two:
        spawn("worker", "--concurrency", "3", **worker_env(settings))
        wait_worker(one.ctx, "preview")
        asset = one.upload_video(tmp_path, seconds=1)
        task = one.create({"assetId": asset["assetId"], "text_prompt": "winter"}).json()
        assert one.wait_task(task["taskId"], {"SUCCEEDED"}, timeout_s=90)["status"] == "SUCCEEDED"
        a, b = samples(one), samples(two)
        succeeded = ("vidmorph_tasks", (("engine", "preview"), ("status", "SUCCEEDED")))
        assert a[succeeded] == b[succeeded] == 1
        live = ("vidmorph_workers_live", (("engine", "preview"),))
        assert a[live] == b[live] == 1
        stage = (
            "vidmorph_stage_duration_seconds_count",
            (("engine", "preview"), ("stage", "engine")),
        )
        assert a[stage] == b[stage] == 1
        # The worker published what it has: the ETA counts its three threads.
        assert fleet.slots(one.ctx, "preview") == 3
        (worker,) = one.ctx.workers.live(10)
        assert worker.kind == "celery" and worker.device == "cpu"
        assert worker.memory_total_bytes and worker.memory_free_bytes


def test_readyz_is_503_while_the_broker_or_storage_is_down(
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    s3: S3Endpoint,
) -> None:
    settings = make_settings(
        workers=0,
        database_url=postgres_url,
        broker_url=broker.url,
        storage_url="s3://ready-bucket/media",
        s3_endpoint_url=s3.url,
    )
    with start_server(settings) as live:
        ready = live.client.get(f"{live.base_url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "storage": "ok", "broker": "ok"}

        broker.kill()
        down = live.client.get(f"{live.base_url}/readyz")
        assert down.status_code == 503
        assert down.json()["code"] == 503 and "broker" in down.json()["error"]
        assert down.json()["checks"]["database"] == "ok"
        broker.start()
        wait_for(
            lambda: live.client.get(f"{live.base_url}/readyz").status_code == 200,
            20,
            "ready again",
        )

        s3.stop()
        down = live.client.get(f"{live.base_url}/readyz")
        assert down.status_code == 503 and "storage" in down.json()["error"]
        s3.start()
        assert live.client.get(f"{live.base_url}/readyz").status_code == 200


def test_readyz_is_503_while_the_database_is_unreachable(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    with start_server(make_settings(database_url=postgres_url)) as live:
        assert live.client.get(f"{live.base_url}/readyz").status_code == 200
        # The database goes away under the running service.
        name = postgres_url.rsplit("/", 1)[1]
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        down = live.client.get(f"{live.base_url}/readyz")
        assert down.status_code == 503
        assert down.json()["checks"]["database"] != "ok"
        assert "database" in down.json()["error"]


def test_preflight_uses_the_memory_remote_workers_publish(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    broker: RedisServer,
    spawn: Callable[..., Proc],
) -> None:
    engine = "tests.engines.fixtures:petabyte"
    settings = make_settings(
        workers=0,
        database_url=postgres_url,
        broker_url=broker.url,
        engine=engine,
        worker_heartbeat_s=0.5,
    )
    with start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        body = {"assetId": asset["assetId"], "text_prompt": "night"}
        # No worker has reported yet: the API cannot know the memory, so it admits.
        assert live.create(body).status_code == 200
        spawn("worker", **worker_env(settings, engine=engine))
        wait_worker(live.ctx, engine)
        fleet.live_workers(live.ctx, max_age_s=0)  # no stale cache
        refused = live.create(body)
        assert refused.status_code == 400, refused.text
        assert "the workers have" in refused.json()["error"]


def test_rabbitmq_works_as_the_broker(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    postgres_url: str,
    spawn: Callable[..., Proc],
) -> None:
    # The machine's RabbitMQ (guest/guest on 127.0.0.1:5672); a queue of this test's own.
    settings = make_settings(
        workers=0,
        database_url=postgres_url,
        broker_url="amqp://guest:guest@127.0.0.1:5672//",
        task_engines={"gen3a": "preview"},
    )
    with start_server(settings) as live:
        assert live.client.get(f"{live.base_url}/readyz").status_code == 200
        spawn(
            "worker",
            **worker_env(settings),
        )
        wait_worker(live.ctx, "preview")
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "sunset"}).json()
        assert live.wait_task(task["taskId"], {"SUCCEEDED"}, timeout_s=90)["status"] == "SUCCEEDED"


def test_a_metrics_token_guards_metrics_but_not_readiness(
    make_settings: Callable[..., Settings],
) -> None:
    secret = "m" * 32
    with start_server(make_settings(workers=0, metrics_token=secret)) as live:
        base = live.base_url
        assert httpx.get(f"{base}/metrics").status_code == 401
        wrong = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["code"] == 401
        api_token = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {live.token}"})
        assert api_token.status_code == 401  # an API token is not the metrics token
        right = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {secret}"})
        assert right.status_code == 200 and "vidmorph_" in right.text
        assert httpx.get(f"{base}/readyz").status_code == 200
