"""PostgreSQL reads in the event loop, for the poll (GET /tasks/{taskId}).

A poll on PostgreSQL is one network round trip. Run on the sync engine it must go to the
threadpool (a round trip may not block the event loop), and the hop and its GIL handoffs cost
more than the query. `AsyncReads` runs prepared statements (store.prepared) on psycopg's own
`AsyncConnectionPool` instead: the await yields the loop to other requests while PostgreSQL
answers, with no thread involved.

The pool belongs to the event loop that first used it (a server process has one); it opens on
first use and closes with the app (`aclose`). Its connections are in autocommit, so each read
is its own snapshot with no BEGIN/ROLLBACK around it, as `Database.raw_read` does. A connection
the server dropped (a restart) fails its statement once; the read is retried on a new one.
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


def conninfo(url: str) -> str:
    """libpq's URI for a SQLAlchemy URL (postgresql+psycopg://... -> postgresql://...)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class AsyncReads:
    def __init__(self, url: str, size: int) -> None:
        self._conninfo, self._size = conninfo(url), size
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
                    kwargs={"autocommit": True, "connect_timeout": 5},
                    min_size=1,
                    max_size=self._size,
                    open=False,
                    timeout=_WAIT_S,
                    name="vidmorph-reads",
                )
                await pool.open()
                self._loop, self._pool = asyncio.get_running_loop(), pool
        return self._pool

    async def raw_or_none(self, statement: Prepared, **values: Any) -> tuple[Any, ...] | None:
        """`statement.raw_or_none`, awaited on a pooled async connection."""
        pool = await self._ready()
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    return await statement.raw_or_none_async(conn, **values)
            except PoolTimeout:
                raise errors.ServiceUnavailable("The database is unreachable.") from None
            except psycopg.OperationalError:
                # The pool discards a broken connection when it comes back; a second attempt
                # gets a live one, or a fresh connection that fails for good.
                if attempt == 2:
                    raise errors.ServiceUnavailable("The database is unreachable.") from None
                log.info("a pooled read connection was dropped; reading again on another")
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
            self._pool, self._loop = None, None
