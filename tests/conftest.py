"""Shared fixtures: isolated settings, a real server on loopback, PostgreSQL databases."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import LiveServer, fresh_postgres_url, start_server
from tests.services import S3_ENV, S3Endpoint, s3_endpoint
from vidmorph.config import Settings


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their Settings explicitly; a developer's VIDMORPH_* must not leak in."""
    for name in list(os.environ):
        if name.startswith("VIDMORPH_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "callback_allow_private": True,
            "lease_s": 3.0,
            "recover_interval_s": 0.5,
            "callback_retry_base_s": 0.2,
            "callback_progress_interval_s": 0.2,
            "api_token": "user:1-testtoken0000000000000000",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    """A real Vidmorph (uvicorn, SQLite file, preview engine) on a loopback port."""
    with start_server(make_settings()) as live:
        yield live


@pytest.fixture(params=["sqlite", "postgres"])
def either_database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides that run a test once on the default SQLite file and once on a fresh
    PostgreSQL database: `start_server(make_settings(**either_database))`."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("postgres_url")}
    return {}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Endpoint]:
    """moto's S3 over HTTP on a loopback port, with the credentials boto3 wants."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    with s3_endpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads; on a busy 2-core box those only contend
    with the server and worker threads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    with fresh_postgres_url() as url:
        yield url
