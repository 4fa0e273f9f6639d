"""Store fixtures: a migrated database, once on a SQLite file and once on a fresh PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import fresh_postgres_url
from vidmorph.store.db import Database


@pytest.fixture(params=["sqlite", "postgres"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    def run(url: str) -> Iterator[Database]:
        db = Database(url)
        db.migrate()
        try:
            yield db
        finally:
            db.close()

    if request.param == "sqlite":
        yield from run(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        with fresh_postgres_url() as url:
            yield from run(url)
