"""Database: engine set-up for SQLite and PostgreSQL, read and write transactions, migrations."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.sql.dml import Insert

from vidmorph.store.group_commit import GroupCommit

if TYPE_CHECKING:
    from vidmorph.store.async_read import AsyncReads

_MIGRATIONS = Path(__file__).parent / "migrations"
#: how long PostgreSQL lets a session sit idle inside a transaction before ending it
_IDLE_TX_MS = 30_000
#: the advisory lock that lets one process at a time run the migrations ("vm-migr")
MIGRATION_LOCK_KEY = int.from_bytes(b"vm-migr\0", "big")
#: the advisory-lock space of the per-user locks (two-int keys: this, the user's number), which
#: serialise what counts a user's rows across its accounts (new accounts, admissions under the
#: per-user cap)
USER_LOCK_SPACE = int.from_bytes(b"vmut", "big")
#: connections of a process's async read pool (PostgreSQL), on top of the engine's pool
ASYNC_READ_POOL = 8


class Database:
    """One SQLAlchemy engine. `write()` transactions are serialised per row or database.

    On SQLite a write transaction starts with BEGIN IMMEDIATE, so two processes admitting
    tasks at once queue on the database lock instead of both reading the same slot count. On
    PostgreSQL admission locks the account row with its first UPDATE (store.admission).
    """

    def __init__(self, url: str, pool_size: int = 20) -> None:
        """`pool_size` connections stay open; a few more (background threads) may open for a
        while. Overflow connections are closed on return, so a steady load above the pool
        would connect anew for nearly every request: keep the API's concurrent database work
        (its threadpool, api/app.py) within the pool."""
        self.url = url
        self.pool_size = pool_size
        self.is_sqlite = url.startswith("sqlite")
        #: the poll's reads in the event loop (store.async_read); None on SQLite, whose local
        #: reads run in the loop as they are
        self.async_reads: AsyncReads | None = None
        #: write work of many threads in shared transactions on SQLite (store.group_commit)
        self.group = GroupCommit(self)
        if self.is_sqlite:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                pool_size=pool_size,
                max_overflow=10,
            )
            _sqlite_pragmas(self.engine)
            self._immediate = self.engine.execution_options(begin_mode="IMMEDIATE")
            self._write_lock = threading.Lock()
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=10,
                # A process frozen (or killed by the OOM killer's slower cousins) in the middle of
                # a transaction must not hold its row locks for ever: the server ends it.
                connect_args={
                    "options": f"-c idle_in_transaction_session_timeout={_IDLE_TX_MS}",
                    # An unreachable host fails in seconds, not after the OS's TCP timeout.
                    "connect_timeout": 5,
                },
            )
            _ping_when_idle(self.engine)
            # psycopg is the postgres extra's: imported only where the database is PostgreSQL.
            from vidmorph.store.async_read import AsyncReads

            self.async_reads = AsyncReads(url, ASYNC_READ_POOL)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def raw_read(self) -> Iterator[Any]:
        """A pooled DBAPI connection for prepared reads (store.prepared), without the
        Connection wrapper; the pool rolls back whatever it began when it is returned."""
        conn = self.engine.raw_connection()
        raw = conn.dbapi_connection
        try:
            if self.is_sqlite:  # autocommit already: each SELECT is its own snapshot
                yield raw
                return
            # psycopg would wrap the SELECT in BEGIN ... ROLLBACK: two more round trips.
            raw.autocommit = True  # type: ignore[union-attr]
            try:
                yield raw
            finally:
                raw.autocommit = False  # type: ignore[union-attr]
        finally:
            conn.close()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                yield conn
            return
        # SQLite's busy handler sleeps up to 100 ms between retries, which turns contention
        # between our own threads into long stalls; queue them on a lock instead. Other
        # processes still wait on the database lock (BEGIN IMMEDIATE + busy_timeout).
        with self._write_lock, self._immediate.begin() as conn:
            yield conn

    def insert_ignore(self, table: Table) -> Insert:
        """INSERT ... ON CONFLICT DO NOTHING: a row that several processes may create at once
        is created by exactly one of them and the others carry on, with no IntegrityError."""
        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def lock_key(self, conn: Connection, name: str) -> None:
        """Serialise write transactions that use the same `name` until `conn` commits: an
        advisory transaction lock on PostgreSQL; nothing on SQLite, whose writers are
        serialised already."""
        if not self.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})

    def lock_user(self, conn: Connection, user_id: int) -> None:
        """Serialise the write transactions that count one user's rows across its accounts
        until `conn` commits (PostgreSQL; SQLite's writers are serialised already)."""
        if not self.is_sqlite:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:space, :user)"),
                {"space": USER_LOCK_SPACE, "user": user_id},
            )

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent, and safe when many
        processes start at once on a fresh database: they take turns, the first migrates and
        the others find the schema at head)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        cfg.attributes["connection_url"] = self.url
        # SQLite: BEGIN IMMEDIATE holds the database's write lock for the whole upgrade.
        # PostgreSQL: a transaction-scoped advisory lock, released by the commit.
        engine = self._immediate if self.is_sqlite else self.engine
        with engine.begin() as conn:
            if not self.is_sqlite:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> None:
        """Raise unless the database answers a query now (for /readyz)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.group.close()
        self.engine.dispose()


#: how long a new connection keeps trying to switch a brand-new database to WAL
_WAL_SWITCH_S = 30.0


def _enable_wal(cur: Any) -> None:
    """PRAGMA journal_mode=WAL, tried again while the database is locked. The first
    connections to a brand-new file race to switch it, and SQLite answers the losers "database
    is locked" at once, without its busy handler (the switch needs an exclusive lock while
    they hold a shared one). The mode is kept in the file, so this waits only on a new one."""
    deadline = time.monotonic() + _WAL_SWITCH_S
    delay_s = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay_s * (1 + random.random()))
        delay_s = min(delay_s * 2, 0.2)


#: a pooled PostgreSQL connection idle longer than this is pinged before it is used again
_PING_AFTER_IDLE_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, but only for connections that sat idle: SQLAlchemy's
    pool_pre_ping would cost every request a round trip (a poll's second one), while a
    connection in steady use was just shown to work. One that fails its ping is discarded
    (DisconnectionError) and the pool hands out another, so a restarted server costs no
    request."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError() from exc


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so the driver must not.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writes take the database lock up front. Reads run in autocommit: each SELECT is its
        # own snapshot, which saves a BEGIN/ROLLBACK round trip on every read.
        mode = conn.get_execution_options().get("begin_mode")
        if mode is not None:
            conn.exec_driver_sql(f"BEGIN {mode}")
