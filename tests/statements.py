"""Counting the SQL statements a server sends, at the driver: SQLite's trace callback and a
psycopg cursor that notes each execute. Whatever path a statement takes (SQLAlchemy Core or
store.prepared on the raw cursor), the driver sees it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import event

from vidmorph.store.db import Database

#: transaction control, not counted as work (a grouped admission's savepoint included)
_BOUNDARIES = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
#: the name prefixes of the service's background threads (store.group_commit's writer,
#: "group-commit", runs the requests' own admissions, so it counts)
_BACKGROUND = ("vidmorph-", "lease-")


class Statements(list[str]):
    """The statements seen, in order; boundaries (BEGIN/COMMIT/ROLLBACK) and the pool's
    liveness pings are told apart from the work."""

    def work(self) -> list[str]:
        return [s for s in self if not _is_boundary(s) and not _is_ping(s)]

    def pings(self) -> int:
        return sum(1 for s in self if _is_ping(s))

    def transactions(self) -> list[list[str]]:
        """The statements between each BEGIN and its COMMIT (SQLite, where BEGIN is sent)."""
        found, current = [], None
        for s in self:
            head = s.strip().upper()
            if head.startswith("BEGIN"):
                current = []
            elif head.startswith(("COMMIT", "ROLLBACK")) and current is not None:
                found.append(current)
                current = None
            elif current is not None and not _is_boundary(s):
                current.append(s)
        return found


def _is_boundary(statement: str) -> bool:
    return statement.strip().upper().startswith(_BOUNDARIES)


def _is_ping(statement: str) -> bool:
    # Our idle-connection ping (store.db), and SQLAlchemy's psycopg pre-ping (";").
    return statement.strip().lower() in ("select 1", ";")


@contextmanager
def counted(db: Database) -> Iterator[Statements]:
    """Every statement `db` sends from here on (the pool is emptied so that each connection it
    makes again is a counted one)."""
    seen = Statements()

    def note(statement: str) -> None:
        # The requests' statements only: the service's own threads (sweeper, deliverer,
        # presence, workers) poll the same database on their own schedule.
        if not threading.current_thread().name.startswith(_BACKGROUND):
            seen.append(statement)

    class CountingCursor(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            note(query if isinstance(query, str) else str(query))
            return super().execute(query, *args, **kwargs)

    class CountingAsyncCursor(psycopg.AsyncCursor[Any]):
        async def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            note(query if isinstance(query, str) else str(query))
            return await super().execute(query, *args, **kwargs)

    class CountingAsyncConnection(psycopg.AsyncConnection[Any]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.cursor_factory = CountingAsyncCursor

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        if db.is_sqlite:
            dbapi_conn.set_trace_callback(note)
        else:
            dbapi_conn.cursor_factory = CountingCursor

    reads = db.async_reads  # the poll's async pool (PostgreSQL): its connections count too
    if reads is not None:
        assert not reads.is_open, "count before the first poll opens the async read pool"
        reads.connection_class = CountingAsyncConnection
    event.listen(db.engine, "connect", on_connect)
    db.engine.dispose()
    try:
        yield seen
    finally:
        event.remove(db.engine, "connect", on_connect)
        db.engine.dispose()
        if reads is not None:
            reads.connection_class = psycopg.AsyncConnection
