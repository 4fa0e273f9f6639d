"""Fleet fixtures: a private Redis broker, an S3 endpoint, PostgreSQL, worker processes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import (
    Proc,
    RedisServer,
    redis_server,
    vidmorph_env,
    wait_for,
)
from vidmorph.config import Settings


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database no process has touched yet: a SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start `vidmorph <args>` with VIDMORPH_* from keywords; every child is stopped after."""
    started: list[Proc] = []

    def start(*args: str, **settings: Any) -> Proc:
        log = tmp_path / f"{args[0]}-{len(started)}.log"
        proc = Proc(list(args), vidmorph_env(**{k: str(v) for k, v in settings.items()}), log)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def worker_env(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The settings a `vidmorph worker` needs to join the fleet of an API built from `settings`
    (the same database, broker, storage, routing and leases); `extra` overrides any of them."""
    values: dict[str, Any] = {
        "database_url": settings.database_url,
        "broker_url": settings.broker_url,
        "data_dir": settings.data_dir,
        "storage_url": settings.storage_url,
        "s3_endpoint_url": settings.s3_endpoint_url,
        "engine": settings.engine,
        "task_engines": json.dumps(settings.task_engines),
        "lease_s": settings.lease_s,
        "worker_heartbeat_s": 0.5,
        "callback_allow_private": "true",
    }
    values.update(extra)
    return values


def wait_worker(ctx: Any, engine: str, count: int = 1, timeout_s: float = 60) -> None:
    """Until `count` workers of `engine` report in."""

    def enough() -> bool:
        return sum(1 for w in ctx.workers.live(30) if engine in w.engine.split(",")) >= count

    wait_for(enough, timeout_s, f"{count} worker(s) of {engine}")
