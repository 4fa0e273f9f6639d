"""The Alembic migrations build exactly the schema `store.tables` declares, on SQLite and
PostgreSQL: a table or column added to one and not the other fails here, not in production."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.harness import fresh_postgres_url
from vidmorph.store.db import Database
from vidmorph.store.tables import metadata


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
        yield from run(f"sqlite:///{tmp_path / 'm.db'}")
    else:
        with fresh_postgres_url() as url:
            yield from run(url)


def test_the_migrated_schema_is_the_declared_one(migrated: Database) -> None:
    with migrated.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []
