"""store.group_commit on a real SQLite file: pieces of write work from many threads share a
transaction, a failing piece undoes only its own writes, a failed COMMIT falls back to one
transaction each, admissions that raced in one batch still respect maxJobs, and a coroutine
awaits its piece without blocking its event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from tests.contracts.tasks import EMAIL, admit, new_task
from vidmorph import errors
from vidmorph.store.accounts import AccountStore
from vidmorph.store.db import Database
from vidmorph.store.tasks import TaskStore
from vidmorph.store.users import UserStore


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'group.db'}")
    database.migrate()
    with database.write() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE child (id INTEGER REFERENCES parent(id))"))
        conn.execute(text("CREATE TABLE note (k TEXT PRIMARY KEY)"))
    yield database
    database.close()


def _note(k: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO note (k) VALUES (:k)"), {"k": k})
        return k

    return work


def _notes(db: Database) -> set[str]:
    with db.read() as conn:
        return {row[0] for row in conn.execute(text("SELECT k FROM note"))}


def _behind_a_held_batch(db: Database, works: list[Callable[[Connection], Any]]) -> list[Any]:
    """Run `works` from threads while the writer is held inside a first piece, so that all of
    them queue up and go into the next batch together; their outcomes (result or exception)."""
    return _while_held(db, [lambda work=work: db.group.run(work) for work in works])


def _while_held(db: Database, calls: list[Callable[[], Any]]) -> list[Any]:
    """Each call in a thread of its own while the writer is held; each must queue one piece."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> str:
        entered.set()
        release.wait(10)
        return "held"

    with ThreadPoolExecutor(len(calls) + 1) as pool:
        first = pool.submit(db.group.run, hold)
        assert entered.wait(10)
        futures = [pool.submit(call) for call in calls]
        while db.group._queue.qsize() < len(calls):  # all queued behind the held piece
            threading.Event().wait(0.005)
        release.set()
        assert first.result(10) == "held"
        outcomes = []
        for future in futures:
            error = future.exception(10)
            outcomes.append(error if error is not None else future.result())
    return outcomes


def test_pieces_queued_together_commit_in_one_transaction(db: Database) -> None:
    outcomes = _behind_a_held_batch(db, [_note(f"n{i}") for i in range(10)])
    assert outcomes == [f"n{i}" for i in range(10)]
    assert _notes(db) == {f"n{i}" for i in range(10)}
    # The held piece alone, then the ten in one.
    assert (db.group.batches, db.group.pieces) == (2, 11)


def test_a_failing_piece_undoes_only_its_own_writes(db: Database) -> None:
    def half_then_fail(conn: Connection) -> None:
        conn.execute(text("INSERT INTO note (k) VALUES ('half')"))
        raise errors.QueueFull()

    def duplicate(conn: Connection) -> None:
        conn.execute(text("INSERT INTO note (k) VALUES ('dup-ok')"))
        conn.execute(text("INSERT INTO note (k) VALUES ('before')"))  # unique index: raises

    with db.write() as conn:
        conn.execute(text("INSERT INTO note (k) VALUES ('before')"))
    outcomes = _behind_a_held_batch(db, [_note("a"), half_then_fail, duplicate, _note("b")])
    assert outcomes[0] == "a" and outcomes[3] == "b"
    assert isinstance(outcomes[1], errors.QueueFull)
    assert "UNIQUE" in str(outcomes[2])
    assert _notes(db) == {"before", "a", "b"}
    assert db.group.batches == 2


def test_a_failed_commit_runs_the_batch_again_one_transaction_each(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("INSERT INTO parent (id) VALUES (1)"))

    def orphan(conn: Connection) -> None:
        # A deferred foreign key is checked at COMMIT: the batch's commit fails.
        conn.execute(text("PRAGMA defer_foreign_keys = ON"))
        conn.execute(text("INSERT INTO child (id) VALUES (99)"))

    outcomes = _behind_a_held_batch(db, [_note("x"), orphan, _note("y")])
    assert outcomes[0] == "x" and outcomes[2] == "y"
    assert "FOREIGN KEY" in str(outcomes[1])
    assert _notes(db) == {"x", "y"}
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM child")).scalar_one() == 0


def test_admissions_in_one_batch_count_each_other_against_max_jobs(db: Database) -> None:
    UserStore(db).create("whsec_dGVzdA==", 1)
    AccountStore(db).upsert(1, EMAIL, max_jobs=3, plan="standard", num_plan_credits=1000)
    tasks = TaskStore(db)

    outcomes = _while_held(db, [lambda: admit(tasks, new_task(credits=10)) for _ in range(16)])
    assert db.group.batches == 2  # the sixteen admissions shared one transaction
    admitted = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(admitted) == 3
    assert all(isinstance(o, errors.AccountBusy) for o in outcomes if o not in admitted)
    assert len(tasks.in_flight(1)) == 3
    account = AccountStore(db).get(1, EMAIL)
    assert account is not None and account.credits_used == 30
    assert tasks.queue.depth() == 3


def test_after_close_work_runs_in_the_callers_own_transaction(db: Database) -> None:
    assert db.group.run(_note("early")) == "early"
    db.group.close()
    seen: list[str] = []
    assert db.group.run(lambda conn: seen.append(threading.current_thread().name) or 1) == 1
    assert seen == [threading.current_thread().name]
    assert _notes(db) == {"early"}


def _held(db: Database) -> tuple[threading.Event, threading.Event, Any]:
    """The writer held inside a first piece: (entered, release, that piece's Future)."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> str:
        entered.set()
        release.wait(10)
        return "held"

    pool = ThreadPoolExecutor(1)
    first = pool.submit(db.group.run, hold)
    pool.shutdown(wait=False)
    assert entered.wait(10)
    return entered, release, first


def test_coroutines_await_their_pieces_without_blocking_the_loop(db: Database) -> None:
    """Coroutines of one loop queued behind a held piece share the next batch: each gets its
    own result or exception, the loop keeps running meanwhile, and the batch wakes the loop
    once for all of them."""
    _, release, first = _held(db)
    loop = asyncio.new_event_loop()
    wakes = 0
    wake = loop.call_soon_threadsafe

    def counted(*args: Any) -> Any:
        nonlocal wakes
        wakes += 1
        return wake(*args)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign]

    def fail(conn: Connection) -> None:
        raise errors.QueueFull()

    async def main() -> list[Any]:
        pieces = [db.group.run_async(_note(f"c{i}")) for i in range(5)]
        pieces.append(db.group.run_async(fail))
        waiting = asyncio.gather(*pieces, return_exceptions=True)
        ticks = 0
        while db.group._queue.qsize() < 6:
            await asyncio.sleep(0.005)
        for _ in range(10):  # the loop runs while the writer is held
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 10 and not waiting.done()
        release.set()
        return await waiting

    try:
        outcomes = loop.run_until_complete(main())
    finally:
        loop.close()
    assert first.result(10) == "held"
    assert outcomes[:5] == [f"c{i}" for i in range(5)]
    assert isinstance(outcomes[5], errors.QueueFull)
    assert _notes(db) == {f"c{i}" for i in range(5)}
    assert (db.group.batches, db.group.pieces) == (2, 7)
    assert wakes == 1


def test_a_coroutine_cancelled_while_it_waits_still_has_its_piece_committed(db: Database) -> None:
    _, release, first = _held(db)

    async def main() -> None:
        waiting = asyncio.ensure_future(db.group.run_async(_note("cancelled")))
        while db.group._queue.qsize() < 1:
            await asyncio.sleep(0.005)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        # The writer settles the cancelled waiter without raising, and keeps serving.
        assert await db.group.run_async(_note("after")) == "after"

    asyncio.run(main())
    assert first.result(10) == "held"
    assert _notes(db) == {"cancelled", "after"}


def test_after_close_a_coroutines_piece_runs_in_a_thread_not_the_loop(db: Database) -> None:
    db.group.close()
    seen: list[str] = []

    async def main() -> int:
        def work(conn: Connection) -> int:
            seen.append(threading.current_thread().name)
            return 1

        return await db.group.run_async(work)

    assert asyncio.run(main()) == 1
    assert seen and seen[0] != threading.current_thread().name
