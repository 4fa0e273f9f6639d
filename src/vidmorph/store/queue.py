"""The queue's cheap figures: the in-flight counter row and a cached snapshot of the line.

The service-wide queue depth is one row (`counters.in_flight`) changed in the same transaction
as the task: admission adds one with a conditional UPDATE that also enforces the limit, and every
move to a terminal status takes one off. So no admission counts the queue or holds a
service-wide lock across round trips; the row is locked only from that UPDATE, the last
statement, to the commit. The sweeper's `reconcile` recounts it as a safety net.

`placeInLine` and the running count come from a snapshot of the PENDING line, read in one
statement about once a second per process by a background thread (tasks this process admits
are added to it; a local status change makes the next poll read it again), so a poll costs no
count over the queue. Another process's changes show within about a second.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Update, func, literal, select, update

from vidmorph.domain.states import TaskStatus
from vidmorph.store.db import Database
from vidmorph.store.prepared import Prepared, arg
from vidmorph.store.tables import counters, tasks
from vidmorph.store.task_rows import IN_FLIGHT_VALUES

log = logging.getLogger(__name__)

IN_FLIGHT_COUNTER = "in_flight"
#: how long a snapshot of the line answers placeInLine before it is read again
SNAPSHOT_TTL_S = 1.0

_in_flight = counters.c.name == IN_FLIGHT_COUNTER


def take_slot_sql() -> Update:
    """One more task in flight unless `p_max` already are: a conditional UPDATE that changes no
    row when the queue is full (run prepared by admission, store.prepared)."""
    return (
        update(counters)
        .where(_in_flight, counters.c.value < arg("p_max"))
        .values(value=counters.c.value + 1)
    )


def take_slot_or_fail_sql() -> Select[Any]:
    """`take_slot_sql` that fails instead of changing no row: a division by zero when the queue
    is full (or the counter row is missing), so the COMMIT sent right behind it, in the same
    round trip, rolls the admission back (PostgreSQL's admission, store.admission)."""
    slot = take_slot_sql().returning(literal(1)).cte("slot")
    return select(literal(1) / select(func.count()).select_from(slot).scalar_subquery())


def release_slot(conn: Connection) -> None:
    """A task left PENDING/RUNNING for good: one fewer in flight."""
    conn.execute(update(counters).where(_in_flight).values(value=counters.c.value - 1))


@dataclass(frozen=True)
class LineSnapshot:
    """The PENDING tasks' queue keys in start order, and how many tasks were RUNNING."""

    pending: list[tuple[int, datetime, str]]
    running: int

    def place(self, priority: int, created_at: datetime, uuid: str) -> int:
        """1 for the next task to start. A task admitted after the snapshot lands behind
        every task in it of its priority or better, which is where it queues."""
        return 1 + bisect.bisect_left(self.pending, (priority, created_at, uuid))


class QueueFigures:
    """Per-process reader of the queue's figures (one per TaskStore)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: the line's read, prepared (store.prepared): it runs over however long the queue is
        self._line = Prepared(
            select(tasks.c.status, tasks.c.priority, tasks.c.created_at, tasks.c.uuid).where(
                tasks.c.status.in_(IN_FLIGHT_VALUES)
            ),
            db.engine.dialect,
        )
        self._snapshot: LineSnapshot | None = None
        self._expires = 0.0
        #: bumped by each local change; a background read begun before it is not installed
        self._generation = 0
        self._dirty = False
        self._refreshing = False
        self._lock = threading.Lock()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="vidmorph-line")

    def depth(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(counters.c.value).where(_in_flight)).scalar_one())

    def snapshot(self) -> LineSnapshot:
        """The line as of about SNAPSHOT_TTL_S ago. An expired snapshot is still answered
        while a background thread reads the line again (the read grows with the queue and
        must not land on a request); only the first call, or the first after a local change,
        reads it on the spot."""
        snap = self._snapshot
        if snap is not None and not self._dirty:
            if time.monotonic() >= self._expires and not self._refreshing:
                self._refreshing = True
                self._reader.submit(self._refresh, self._generation)
            return snap
        with self._lock:
            if self._snapshot is None or self._dirty:
                self._dirty = False
                self._snapshot = self._read()
                self._expires = time.monotonic() + SNAPSHOT_TTL_S
            return self._snapshot

    def peek(self) -> LineSnapshot | None:
        """`snapshot()` when it needs no read on the spot (for a caller in the event loop, which
        may not wait on PostgreSQL); None when only a read would do."""
        if self._snapshot is None or self._dirty:
            return None
        return self.snapshot()

    def _refresh(self, generation: int) -> None:
        try:
            snap = self._read()
            with self._lock:
                if generation == self._generation:
                    self._snapshot = snap
                    self._expires = time.monotonic() + SNAPSHOT_TTL_S
        except Exception:
            log.exception("reading the queue's line failed; the next poll tries again")
        finally:
            self._refreshing = False

    def admitted(self, priority: int, created_at: datetime, uuid: str) -> None:
        """A task this process just admitted joins the snapshot where it queues (a task of a
        better priority lands ahead of older ones), so its neighbours' places stay right."""
        with self._lock:
            if self._snapshot is not None:
                bisect.insort(self._snapshot.pending, (priority, created_at, uuid))

    def invalidate(self) -> None:
        """A task of this process changed status: the next poll reads the line again. No
        lock: it is called inside write transactions, which must not wait on a read."""
        self._generation += 1
        self._dirty = True

    def _read(self) -> LineSnapshot:
        with self.db.raw_read() as raw:
            rows = self._line.raw_rows(raw)
        pending = TaskStatus.PENDING.value
        line: list[tuple[int, datetime, str]] = sorted(
            tuple(self._line.convert(row)[1:]) for row in rows if row[0] == pending
        )
        return LineSnapshot(line, len(rows) - len(line))

    def reconcile(self) -> tuple[int, int]:
        """Set the in-flight counter to the real count; (was, is). The counter row is locked
        before counting, so admissions and terminal moves that race this one queue behind it
        with their change still to apply, and the count they are missing is theirs."""
        with self.db.write() as conn:
            was = conn.execute(
                select(counters.c.value).where(_in_flight).with_for_update()
            ).scalar_one_or_none()
            real = int(
                conn.execute(
                    select(func.count()).where(tasks.c.status.in_(IN_FLIGHT_VALUES))
                ).scalar_one()
            )
            if was is None:
                conn.execute(counters.insert().values(name=IN_FLIGHT_COUNTER, value=real))
            elif was != real:
                conn.execute(update(counters).where(_in_flight).values(value=real))
        return (-1 if was is None else int(was)), real
