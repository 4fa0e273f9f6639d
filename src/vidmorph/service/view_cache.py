"""Encoded task views, reused while the row they were made from is unchanged (the poll's cache).

Clients poll `GET /tasks/{taskId}` every few seconds for every task in flight, and most polls
find the task as the last one did. Each poll still reads the task's joined row (one statement),
so it never answers from stale data: what a worker, a cancel or another process wrote, the next
poll shows. What it skips is the rest: converting the row's ~50 columns, building the view and
encoding its JSON. A cached body is used again only when

- the row is equal, value for value, to the one the body was made from;
- the body is younger than `REUSE_S` (the view's parts that move with time, the ETA and the
  signed URLs, are at most that much older than a fresh build's: the same bound the queue's
  line snapshot already has);
- for a PENDING task, the line snapshot its `placeInLine` came from is still the current one.

The cache is per process and bounded (`MAX_ENTRIES`, oldest dropped first). It holds no
secrets beyond what the task's owner is shown, keyed by (user, task), so tenancy is what the
row read enforces.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

#: seconds a body is reused for an unchanged row
REUSE_S = 1.0
#: bodies kept (a few KB each): more than the tasks one process sees polled in a second
MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class _Entry:
    row: tuple[Any, ...]
    #: the line snapshot a PENDING task's place came from; None for any other status
    line: object | None
    expires: float
    body: bytes


class ViewCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, reuse_s: float = REUSE_S) -> None:
        self.max_entries, self.reuse_s = max_entries, reuse_s
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()  # polls on PostgreSQL run in the threadpool
        #: builds under way in the event loop, by key, with the row each is made from
        self._building: dict[Hashable, tuple[tuple[Any, ...], asyncio.Task[bytes]]] = {}
        self.hits = self.builds = 0

    def get(self, key: Hashable, row: tuple[Any, ...], line: Callable[[], object]) -> bytes | None:
        """The body made from `row` for `key`, if still good; `line` gives the current line
        snapshot (called only for a PENDING task's entry)."""
        entry = self._entries.get(key)
        if (
            entry is None
            or time.monotonic() >= entry.expires
            or entry.row != row
            or (entry.line is not None and entry.line is not line())
        ):
            return None
        self.hits += 1
        return entry.body

    def put(self, key: Hashable, row: tuple[Any, ...], line: object | None, body: bytes) -> None:
        entry = _Entry(row, line, time.monotonic() + self.reuse_s, body)
        with self._lock:
            self._entries.pop(key, None)  # re-inserted last: the dict's order is the age order
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    async def build_once(
        self, key: Hashable, row: tuple[Any, ...], build: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """`build()`'s body for `row`, awaited by every poll of that row that missed while it
        runs: when a PENDING task's line moves, the 32 polls of it waiting on one read all miss
        at once, and one build serves them (in the event loop, which alone calls this). The
        build is a task of its own, so a poll whose client leaves does not cancel it."""
        under_way = self._building.get(key)
        if under_way is None or under_way[0] != row:
            task = asyncio.get_running_loop().create_task(self._build(key, build))
            under_way = self._building[key] = (row, task)
        return await asyncio.shield(under_way[1])

    async def _build(self, key: Hashable, build: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            self.builds += 1
            return await build()
        finally:
            task = asyncio.current_task()
            if self._building.get(key, (None, None))[1] is task:
                del self._building[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
