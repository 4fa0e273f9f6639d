"""Alembic environment: runs on the connection `Database.migrate` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from vidmorph.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    engine = create_engine(config.attributes["connection_url"])
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
