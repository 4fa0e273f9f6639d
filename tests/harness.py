"""Test harness: run the real app with uvicorn on 127.0.0.1 in a thread; fresh PostgreSQL DBs."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import create_engine, text

from tests.videos import make_video
from vidmorph.api.app import create_app
from vidmorph.api.server import uvicorn_options
from vidmorph.config import Settings
from vidmorph.container import Services, build_services
from vidmorph.service.accounts import ensure_default_setup
from vidmorph.service.context import AppContext

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    token: str
    services: Services
    client: httpx.Client

    @property
    def ctx(self) -> AppContext:
        return self.services.ctx

    @property
    def api(self) -> str:
        return f"{self.base_url}/v1/runwayml"

    def upload(self, path: Path, content_type: str = "video/mp4", **params: Any) -> dict[str, Any]:
        resp = self.client.post(
            f"{self.api}/assets/",
            params={"name": path.stem, **params},
            content=path.read_bytes(),
            headers={"Content-Type": content_type},
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def upload_video(self, tmp_path: Path, **video: Any) -> dict[str, Any]:
        path = make_video(tmp_path / f"in-{uuid.uuid4().hex[:6]}.mp4", **video)
        return self.upload(path)

    def create(self, body: dict[str, Any], route: str = "gen3/video", **kw: Any) -> httpx.Response:
        return self.client.post(f"{self.api}/{route}", json=body, **kw)

    def wait_task(self, task_id: str, statuses: set[str], timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            body: dict[str, Any] = self.client.get(f"{self.api}/tasks/{task_id}").json()
            if body.get("status") in statuses or time.monotonic() > deadline:
                return body
            time.sleep(0.05)


@contextmanager
def start_server(settings: Settings) -> Iterator[LiveServer]:
    port = free_port()
    settings = settings.model_copy(
        update={"port": port, "host": "127.0.0.1", "public_url": f"http://127.0.0.1:{port}"}
    )
    services = build_services(settings)
    _, token = ensure_default_setup(services.ctx)
    assert token is not None
    options = {**uvicorn_options(settings), "log_level": "warning"}
    config = uvicorn.Config(create_app(services), lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    try:
        yield LiveServer(base, token, services, client)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def fresh_postgres_url() -> Iterator[str]:
    """CREATE DATABASE for one test; fails (never skips) when PostgreSQL is not running."""
    name = f"vidmorph_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
