"""The Alembic migrations build exactly the schema `store.tables` declares, on SQLite and
PostgreSQL: a table or column added to one and not the other fails here, not in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from vidmorph.store.db import Database
from vidmorph.store.tables import metadata


def test_the_migrated_schema_is_the_declared_one(migrated: Database) -> None:
    with migrated.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []
