"""PostgreSQL reads in the event loop, for the poll (GET /tasks/{taskId}).

A poll on PostgreSQL is one network round trip. Run on the sync engine it must go to the
threadpool (a round trip may not block the event loop), and the hop and its GIL handoffs cost
more than the query. `AsyncReads` runs prepared statements (store.prepared) on psycopg's own
`AsyncConnectionPool` instead: the await yields the loop to other requests while PostgreSQL
answers, with no thread involved.

The pool belongs to the event loop that first used it (a server process has one); it opens on
first use and closes with the app (`aclose`). Its connections are in autocommit, so each read
is its own snapshot with no BEGIN/ROLLBACK around it, as `Database.raw_read` does. A connection
the server dropped (a restart) fails its statement; the read is tried again on another.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from vidmorph import errors
from vidmorph.store.prepared import Prepared

log = logging.getLogger(__name__)
#: how long a read waits for a free connection (or for a new one) before answering 503
_WAIT_S = 10.0
#: how the pool's sessions show in pg_stat_activity
APPLICATION_NAME = "vidmorph-poll"


def conninfo(url: str) -> str:
    """libpq's URI for a SQLAlchemy URL (postgresql+psycopg://... -> postgresql://...)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class AsyncReads:
    def __init__(self, url: str, size: int, wait_s: float = _WAIT_S) -> None:
        self._conninfo, self._size, self._wait_s = conninfo(url), size, wait_s
        self._pool: AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening = asyncio.Lock()
        #: what the pool connects with, read when it opens (tests/statements.py counts with its own)
        self.connection_class: type[psycopg.AsyncConnection[Any]] = psycopg.AsyncConnection

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def usable(self) -> bool:
        """Whether the running loop may use the pool: the loop that opened it, or any loop
        while none is open. A caller in another loop reads through the sync engine instead."""
        return self._loop is None or self._loop is asyncio.get_running_loop()

    async def _ready(self) -> AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self._conninfo,
                    connection_class=self.connection_class,
                    kwargs={
                        "autocommit": True,
                        "connect_timeout": 5,
                        "application_name": APPLICATION_NAME,
                    },
                    min_size=1,
                    max_size=self._size,
                    open=False,
                    timeout=self._wait_s,
                    name="vidmorph-reads",
                )
                await pool.open()
                self._loop, self._pool = asyncio.get_running_loop(), pool
        return self._pool

    async def raw_or_none(self, statement: Prepared, **values: Any) -> tuple[Any, ...] | None:
        """`statement.raw_or_none`, awaited on a pooled async connection."""
        rows = await self.all(statement, **values)
        return rows[0] if rows else None

    async def all(self, statement: Prepared, **values: Any) -> list[tuple[Any, ...]]:
        """Every row `statement` returns, as the driver returned them, awaited on a pooled async
        connection."""
        pool = await self._ready()
        # Each failed attempt discards one dead connection: after a server restart every pooled
        # one is, and each fails at once; past them, a fresh connection answers or fails.
        attempts = self._size + 1
        for attempt in range(1, attempts + 1):
            try:
                async with pool.connection() as conn:
                    return await statement.raw_rows_async(conn, **values)
            except PoolTimeout:
                raise errors.ServiceUnavailable("The database is unreachable.") from None
            except psycopg.OperationalError:
                if attempt == attempts:
                    raise errors.ServiceUnavailable("The database is unreachable.") from None
                log.info("a pooled read connection was dropped; reading again on another")
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
            self._pool, self._loop = None, None
