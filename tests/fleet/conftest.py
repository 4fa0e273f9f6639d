"""Fleet fixtures: a private Redis broker, an S3 endpoint, PostgreSQL, worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import (
    S3_ENV,
    Proc,
    RedisServer,
    S3Endpoint,
    redis_server,
    s3_endpoint,
    vidmorph_env,
    wait_for,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Endpoint]:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    with s3_endpoint() as endpoint:
        yield endpoint


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


def wait_worker(ctx: Any, engine: str, count: int = 1, timeout_s: float = 60) -> None:
    """Until `count` workers of `engine` report in."""

    def enough() -> bool:
        return sum(1 for w in ctx.workers.live(30) if engine in w.engine.split(",")) >= count

    wait_for(enough, timeout_s, f"{count} worker(s) of {engine}")
