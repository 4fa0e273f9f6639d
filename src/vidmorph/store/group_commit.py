"""Group commit: the write transactions of many threads run as one, on SQLite.

SQLite has one writer at a time, and the begin and commit of a write transaction cost more
than the handful of statements an admission runs in it (~140 us against ~25 us each, on this
project's VM), while 32 threads queuing on the write lock add GIL hand-offs of their own. So
admissions go to one writer thread, which takes every piece of work waiting when it starts a
batch and runs each in its own SAVEPOINT inside a single BEGIN IMMEDIATE ... COMMIT:

- a piece that raises is rolled back to its savepoint alone and its caller gets the exception;
  the others are unaffected, and each sees the writes of the pieces before it (so two
  admissions of one account in one batch count each other against maxJobs);
- callers hear their result only once the batch has committed: nothing is reported done that
  could still be lost; a failed COMMIT runs the batch's pieces again one transaction each, so
  one bad piece cannot fail the rest;
- a lone piece starts at once (no timer): batches form only while the writer is busy;
- a coroutine awaits its piece (`run_async`) without blocking its event loop, and a batch wakes
  each loop once for all of that loop's pieces in it.

PostgreSQL locks rows, not the database, so its transactions run concurrently as they are:
there `run` is a plain write transaction in the caller's thread. (Grouping them would hold
the locks of every account in a batch together with the queue's counter row, and two
processes' batches could deadlock on each other.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection

if TYPE_CHECKING:
    from vidmorph.store.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[Connection], Any]
#: a thread's Future (`run`) or a coroutine's (`run_async`)
Waiter = Future[Any] | asyncio.Future[Any]

#: the most pieces of work one transaction takes (a bound on how long it holds the lock)
MAX_BATCH = 64


class GroupCommit:
    """Runs pieces of write work for `db`'s threads, grouped into shared transactions."""

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Work, Waiter] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        #: batches committed and pieces run in them (what the tests read)
        self.batches = 0
        self.pieces = 0

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` inside a write transaction, committed before this returns; its
        exception, raised here, rolls back its own writes only."""
        if self._db.is_sqlite:
            future: Future[T] = Future()
            if self._put(work, future):
                return future.result()
        with self._db.write() as conn:
            return work(conn)

    async def run_async(self, work: Callable[[Connection], T]) -> T:
        """`run` for a coroutine: it waits for the commit without blocking its event loop.
        On PostgreSQL (and after `close`) the transaction runs in a worker thread."""
        if self._db.is_sqlite:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            if self._put(work, future):
                return await future
        return await asyncio.to_thread(self.run, work)

    def _put(self, work: Work, waiter: Waiter) -> bool:
        """Queue `work` for the writer; False once closed. Under the lock that `close` takes,
        so no work is queued behind the writer's stop."""
        with self._lock:
            if self._closed:
                return False
            self._start_writer()
            self._queue.put((work, waiter))
            return True

    def close(self) -> None:
        """Finish the work queued so far and stop the writer; later work runs inline."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def _start_writer(self) -> None:
        """Start the writer thread unless it runs in this process (the caller holds the lock).
        After a fork (a Celery prefork child) the parent's writer is not running here."""
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="group-commit", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[tuple[Work, Waiter]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._db.write() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                for work, _ in batch:
                    outcomes.append(_in_savepoint(raw, conn, work))
        except BaseException as error:  # the BEGIN or the COMMIT failed (disk full, I/O)
            log.warning("a grouped commit of %d failed (%s); one at a time", len(batch), error)
            self._one_by_one(batch)
            return
        self.batches += 1
        self.pieces += len(batch)
        pairs = zip(batch, outcomes, strict=True)
        _deliver([(waiter, ok, value) for (_, waiter), (ok, value) in pairs])

    def _one_by_one(self, batch: list[tuple[Work, Waiter]]) -> None:
        for work, waiter in batch:
            try:
                with self._db.write() as conn:
                    outcome = (waiter, True, work(conn))
            except BaseException as error:
                outcome = (waiter, False, error)
            _deliver([outcome])


def _in_savepoint(raw: Any, conn: Connection, work: Work) -> tuple[bool, Any]:
    """(True, result) or (False, exception): `work` in a savepoint, undone when it raises."""
    raw.execute("SAVEPOINT piece")
    try:
        value = work(conn)
    except Exception as error:
        raw.execute("ROLLBACK TO piece")
        raw.execute("RELEASE piece")
        return False, error
    raw.execute("RELEASE piece")
    return True, value


def _deliver(outcomes: list[tuple[Waiter, bool, Any]]) -> None:
    """Hand each waiter its result or exception: a thread's directly, a coroutine's in its own
    loop, one wake-up per loop for all of its waiters."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiter, bool, Any]]] = {}
    for outcome in outcomes:
        waiter = outcome[0]
        if isinstance(waiter, asyncio.Future):
            by_loop.setdefault(waiter.get_loop(), []).append(outcome)
        else:
            _settle([outcome])
    for loop, theirs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits any more
            loop.call_soon_threadsafe(_settle, theirs)


def _settle(outcomes: list[tuple[Waiter, bool, Any]]) -> None:
    for waiter, ok, value in outcomes:
        if waiter.done():  # a coroutine cancelled while it waited (its work still ran)
            continue
        if ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)
