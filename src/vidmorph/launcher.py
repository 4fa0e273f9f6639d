"""`vidmorph fleet`: the whole scale path on one machine, for trying it and for tests.

Starts, as child processes: N HTTP processes (`vidmorph serve --processes N`), M Celery workers
(`vidmorph worker`), and with `--local-s3` an S3-compatible endpoint (moto's server, objects kept
in memory: for trying things, not for production). PostgreSQL and Redis are the ones already
running (the database is created if missing). Stops every child when one of them exits or
when it is interrupted.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


@dataclass
class FleetPlan:
    database_url: str
    broker_url: str
    processes: int = 2
    workers: int = 2
    worker_concurrency: int = 1
    engine: str = "preview"
    #: port for a local S3 endpoint (moto), or None to use VIDMORPH_STORAGE_URL as configured
    local_s3_port: int | None = None
    bucket_url: str = "s3://vidmorph/media"
    extra_env: dict[str, str] = field(default_factory=dict)


def ensure_database(url: str) -> None:
    """CREATE DATABASE for a PostgreSQL URL whose database does not exist yet."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not parsed.database:
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).first()
            if found is None:
                # The name comes from the operator's own setting, quoted as an identifier.
                quoted = parsed.database.replace('"', '""')
                conn.execute(text(f'CREATE DATABASE "{quoted}"'))
                log.info("created database %s", parsed.database)
    finally:
        admin.dispose()


def child_env(plan: FleetPlan, base: Mapping[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(plan.extra_env)
    env["VIDMORPH_DATABASE_URL"] = plan.database_url
    env["VIDMORPH_BROKER_URL"] = plan.broker_url
    env["VIDMORPH_ENGINE"] = plan.engine
    if plan.local_s3_port is not None:
        env["VIDMORPH_STORAGE_URL"] = plan.bucket_url
        env["VIDMORPH_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{plan.local_s3_port}"
        # moto accepts any credentials; boto3 still wants some.
        env.setdefault("AWS_ACCESS_KEY_ID", "vidmorph-local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "vidmorph-local")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def commands(plan: FleetPlan) -> list[list[str]]:
    me = [sys.executable, "-m", "vidmorph"]
    cmds = []
    if plan.local_s3_port is not None:
        cmds.append([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                     "-p", str(plan.local_s3_port)])  # fmt: skip
    cmds.append([*me, "serve", "--processes", str(plan.processes)])
    for _ in range(plan.workers):
        cmds.append([*me, "worker", "--engine", plan.engine,
                     "--concurrency", str(plan.worker_concurrency)])  # fmt: skip
    return cmds


def _wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the local S3 endpoint did not start on port {port}")


def run(plan: FleetPlan) -> int:
    """Start everything; return when a child exits or on SIGINT/SIGTERM (exit code)."""
    ensure_database(plan.database_url)
    env = child_env(plan, os.environ)
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for i, cmd in enumerate(commands(plan)):
            children.append(subprocess.Popen(cmd, env=env))
            if i == 0 and plan.local_s3_port is not None:
                _wait_listening(plan.local_s3_port)
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    log.error("%s exited with %s; stopping the fleet", child.args, child.returncode)
                    stopping = True
            time.sleep(0.2)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0
