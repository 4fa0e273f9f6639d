"""The service-wide in-flight counter (store.queue) on SQLite and PostgreSQL: exact through
admissions, refusals, cancels and finishes, including racing ones; `reconcile` repairs drift;
the line snapshot answers placeInLine without a count per poll."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import func, select, text

from tests.contracts.tasks import EMAIL, admit, new_task
from vidmorph import errors
from vidmorph.domain.states import TaskStatus
from vidmorph.store import queue
from vidmorph.store.accounts import AccountStore
from vidmorph.store.db import Database
from vidmorph.store.tables import tasks as tasks_table
from vidmorph.store.task_rows import IN_FLIGHT_VALUES
from vidmorph.store.tasks import TaskStore


def real_in_flight(db: Database) -> int:
    with db.read() as conn:
        query = select(func.count()).where(tasks_table.c.status.in_(IN_FLIGHT_VALUES))
        return int(conn.execute(query).scalar_one())


def test_the_counter_follows_every_way_in_and_out(db: Database, tasks: TaskStore) -> None:
    first = admit(tasks, new_task(credits=1))[0]
    second = admit(tasks, new_task(credits=1))[0]
    third = admit(tasks, new_task(credits=1))[0]
    assert tasks.queue.depth() == 3
    with pytest.raises(errors.AccountBusy):  # refused: rolled back with its +1
        admit(tasks, new_task(credits=1))
    assert tasks.queue.depth() == 3
    assert tasks.transition(first.uuid, TaskStatus.CANCELLED)
    assert not tasks.transition(first.uuid, TaskStatus.CANCELLED)  # a repeat moves nothing
    assert tasks.claim(second.uuid, "w1", 30) is not None  # PENDING -> RUNNING: still in flight
    assert tasks.queue.depth() == 2
    assert tasks.succeed(second.uuid, "w1", [])
    assert tasks.transition(third.uuid, TaskStatus.FAILED, error={"message": "x"})
    assert tasks.queue.depth() == 0 == real_in_flight(db)


def test_a_full_queue_refuses_and_rolls_back_the_credits(db: Database, tasks: TaskStore) -> None:
    admit(tasks, new_task(credits=5))
    with pytest.raises(errors.QueueFull):
        tasks.admit(new_task(credits=5), max_jobs=3, max_queue_depth=1)
    account = AccountStore(db).get(1, EMAIL)
    assert account is not None and account.credits_used == 5
    assert tasks.queue.depth() == 1 == real_in_flight(db)


def test_without_its_counter_row_the_queue_refuses_and_writes_nothing(
    db: Database, tasks: TaskStore
) -> None:
    """No row to take a slot from is a full queue, never an admission left uncounted (on
    PostgreSQL the slot's statement goes with the COMMIT, so it must fail, not change nothing)."""
    with db.write() as conn:
        conn.execute(text("DELETE FROM counters"))
    with pytest.raises(errors.QueueFull):
        tasks.admit(new_task(credits=5), max_jobs=3, max_queue_depth=10)
    account = AccountStore(db).get(1, EMAIL)
    assert account is not None and account.credits_used == 0
    assert real_in_flight(db) == 0
    tasks.queue.reconcile()  # the sweeper's repair puts the row back
    assert admit(tasks, new_task(credits=5))[1]
    assert tasks.queue.depth() == 1 == real_in_flight(db)


def test_racing_admissions_and_cancels_keep_the_counter_exact(
    db: Database, tasks: TaskStore
) -> None:
    emails = [f"r{index}@example.com" for index in range(8)]
    for email in emails:
        AccountStore(db).upsert(1, email, max_jobs=10, plan="standard", num_plan_credits=10**6)
    barrier = threading.Barrier(len(emails))
    failures: list[BaseException] = []

    def churn(email: str) -> None:
        barrier.wait()
        try:
            for n in range(6):
                admitted = tasks.admit(
                    replace(new_task(credits=1), email=email), max_jobs=10, max_queue_depth=30
                )
                if n % 2:
                    tasks.transition(admitted.task.uuid, TaskStatus.CANCELLED)
        except errors.QueueFull:
            pass
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=churn, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert tasks.queue.depth() == real_in_flight(db) <= 30
    assert real_in_flight(db) > 0


def test_reconcile_repairs_a_drifted_counter(db: Database, tasks: TaskStore) -> None:
    admit(tasks, new_task(credits=1))
    with db.write() as conn:
        conn.execute(text("UPDATE counters SET value = 57 WHERE name = 'in_flight'"))
    assert tasks.queue.reconcile() == (57, 1)
    assert tasks.queue.depth() == 1
    assert tasks.queue.reconcile() == (1, 1)
    with db.write() as conn:
        conn.execute(text("DELETE FROM counters"))
    assert tasks.queue.reconcile() == (-1, 1)  # a missing row is made again
    admit(tasks, new_task(credits=1))
    assert tasks.queue.depth() == 2


def test_place_in_line_comes_from_a_snapshot_kept_in_step_with_local_changes(
    tasks: TaskStore,
) -> None:
    relaxed = admit(tasks, new_task(credits=0, explore=True))[0]
    assert tasks.place_in_line(relaxed) == 1
    normal = admit(tasks, new_task(credits=1))[0]  # admitted here: joins the snapshot ahead
    assert (tasks.place_in_line(normal), tasks.place_in_line(relaxed)) == (1, 2)
    assert tasks.transition(normal.uuid, TaskStatus.CANCELLED)  # a local change: read again
    assert tasks.place_in_line(relaxed) == 1
    assert tasks.line().running == 0


def test_an_expired_snapshot_is_read_again_off_the_request(
    db: Database, tasks: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "SNAPSHOT_TTL_S", 0.05)
    admit(tasks, new_task(credits=1))
    assert len(tasks.line().pending) == 1
    elsewhere = TaskStore(db)  # another process: this one's snapshot does not see its tasks
    admit(elsewhere, new_task(credits=1))
    time.sleep(0.1)
    assert len(tasks.line().pending) == 1  # expired: answered at once, read in the background
    deadline = time.monotonic() + 5
    while len(tasks.line().pending) != 2:
        assert time.monotonic() < deadline, "the background read never landed"
        time.sleep(0.01)
