"""`vidmorph fleet` starts the whole scale path on one machine: the machine's PostgreSQL and
Redis, 2 HTTP processes, 2 Celery workers and a local S3 endpoint, and it does the main job."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from tests.harness import PG_ADMIN_URL, free_port
from tests.services import Proc, vidmorph_env, wait_for, wait_healthy
from tests.videos import make_video
from vidmorph.config import Settings
from vidmorph.container import build_context

TOKEN = "user:1-localfleettoken000000000000"
#: a database index of the machine's Redis of this test's own
REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.mark.slow
def test_one_command_starts_a_working_fleet(tmp_path: Path) -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    db_name = f"vidmorph_fleet_{uuid.uuid4().hex[:10]}"
    database_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db_name}"
    port, s3_port = free_port(), free_port()
    env = vidmorph_env(
        data_dir=str(tmp_path / "data"), port=str(port), api_token=TOKEN, worker_heartbeat_s="0.5"
    )
    fleet = Proc(
        ["fleet", "--database-url", database_url, "--broker-url", REDIS_URL,
         "--local-s3", str(s3_port)],
        env,
        tmp_path / "fleet.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, fleet, timeout_s=90)
        ctx = build_context(Settings(database_url=database_url, data_dir=tmp_path / "probe"))
        try:
            wait_for(
                lambda: sum(1 for w in ctx.workers.live(10) if w.kind == "celery") == 2,
                60,
                "two workers reporting in",
            )
        finally:
            ctx.db.close()
        client = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        # Ready once every dependency answers within its 3 s; on a loaded 2-core machine the
        # first checks, right after start-up, can take longer.
        wait_for(lambda: client.get(f"{base}/readyz").status_code == 200, 30, "readiness")
        video = make_video(tmp_path / "in.mp4", seconds=1)
        asset = client.post(
            f"{base}/v1/runwayml/assets/?name=in",
            content=video.read_bytes(),
            headers={"Content-Type": "video/mp4"},
        ).json()
        task = client.post(
            f"{base}/v1/runwayml/gen3/video",
            json={"assetId": asset["assetId"], "text_prompt": "the same street at night"},
        ).json()
        deadline = time.monotonic() + 90
        while task["status"] not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
            time.sleep(0.2)
            task = client.get(f"{base}/v1/runwayml/tasks/{task['taskId']}").json()
        assert task["status"] == "SUCCEEDED", fleet.output()[-4000:]
        url = task["artifacts"][0]["url"]
        # The output lives in the S3 endpoint and is fetched from there, presigned.
        assert url.startswith(f"http://127.0.0.1:{s3_port}/vidmorph/media/")
        assert httpx.get(url).content[4:8] == b"ftyp"
        # Two HTTP processes serve the port.
        children = Path(f"/proc/{fleet.pid}/task/{fleet.pid}/children").read_text().split()
        serve_pid = next(
            pid for pid in children if b"\0serve\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
        served = [
            pid
            for pid in Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(served) == 2
    finally:
        fleet.stop()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
