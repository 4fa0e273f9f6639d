"""PostgreSQL connections: a pooled connection the server dropped while it sat idle is found
by the idle ping and replaced, so the next request does not fail; one in steady use is not
pinged at all."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.harness import fresh_postgres_url
from tests.statements import counted
from vidmorph.store import db as db_module
from vidmorph.store.db import Database


def backend_pid(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_dropped_while_idle_is_replaced_not_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with fresh_postgres_url() as url:
        db = Database(url, pool_size=1)
        admin = Database(url)
        try:
            first = backend_pid(db)  # the pool's one connection, now idle in the pool
            with admin.write() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            monkeypatch.setattr(db_module, "_PING_AFTER_IDLE_S", 0.0)
            assert backend_pid(db) != first  # pinged, found dead, replaced: no error
        finally:
            db.close()
            admin.close()


def test_a_connection_in_steady_use_is_not_pinged() -> None:
    with fresh_postgres_url() as url:
        db = Database(url)
        try:
            backend_pid(db)
            with counted(db) as seen:
                for _ in range(5):
                    backend_pid(db)
            assert seen.pings() == 0 and len(seen.work()) == 5
        finally:
            db.close()
