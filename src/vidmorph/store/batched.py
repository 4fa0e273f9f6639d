"""Reads of one row by key folded together: the requests of one turn of the event loop in one
statement (the poll on PostgreSQL, store.async_read).

Each poll's round trip costs this process about 100 us of CPU in the driver and the pool, more
than the rest of the poll, and 32 clients polling at once need not pay it 32 times. The polls
waiting in one turn of the loop are read with one `WHERE key = ANY(...)`, and each gets its
own row back (or None); a failed read fails each of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from vidmorph.store.prepared import Prepared


class Reads(Protocol):
    def all(self, statement: Prepared, **values: Any) -> Awaitable[list[tuple[Any, ...]]]: ...


class Batched:
    """Rows by key through `statement` (which takes the keys as `p_keys`, an array), the
    requests of one event-loop turn read together; `key_of` gives the key a raw row answers.
    Rows are raw, as the driver returned them; the caller checks what it may see (tenancy)."""

    def __init__(
        self,
        reads: Reads,
        statement: Callable[[], Prepared],
        key_of: Callable[[tuple[Any, ...]], Any],
    ) -> None:
        self._reads, self._statement, self._key_of = reads, statement, key_of
        self._waiting: list[tuple[Any, asyncio.Future[tuple[Any, ...] | None]]] = []
        self._running: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references
        #: statements run and rows asked for (a poll's batch size is their ratio)
        self.reads = self.asked = 0

    async def get(self, key: Any) -> tuple[Any, ...] | None:
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # After the requests already ready to run in this turn have asked too.
            loop.call_soon(self._flush)
        future: asyncio.Future[tuple[Any, ...] | None] = loop.create_future()
        self._waiting.append((key, future))
        return await future

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._read(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _read(self, batch: list[tuple[Any, asyncio.Future[tuple[Any, ...] | None]]]) -> None:
        keys = sorted({key for key, _ in batch})
        self.reads += 1
        self.asked += len(batch)
        try:
            rows = await self._reads.all(self._statement(), p_keys=keys)
        except asyncio.CancelledError:  # the loop is closing
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        found = {self._key_of(row): row for row in rows}
        for key, future in batch:
            if not future.done():  # a poll whose client went away was cancelled meanwhile
                future.set_result(found.get(key))
