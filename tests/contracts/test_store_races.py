"""The store's admission under concurrency, on SQLite and PostgreSQL: slots, queue depth and
Idempotency-Keys hold when requests race, in threads and across transactions."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, text

from tests.contracts.tasks import EMAIL, admit, new_task
from vidmorph import errors
from vidmorph.domain.clock import utcnow
from vidmorph.store.accounts import AccountStore
from vidmorph.store.db import Database
from vidmorph.store.tables import moderation_events
from vidmorph.store.tables import tasks as tasks_table
from vidmorph.store.task_rows import task_values
from vidmorph.store.tasks import TaskStore


def test_concurrent_admissions_never_exceed_max_jobs(tasks: TaskStore) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def attempt() -> None:
        barrier.wait()
        try:
            admit(tasks, new_task(credits=10))
            result = "admitted"
        except errors.AccountBusy:
            result = "busy"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("admitted") == 3
    assert outcomes.count("busy") == 9
    assert len(tasks.in_flight(1)) == 3


def test_concurrent_admissions_on_many_accounts_never_exceed_the_queue_depth(
    db: Database, tasks: TaskStore
) -> None:
    """The account lock serialises one account; the service-wide queue depth needs more."""
    emails = [f"q{index}@example.com" for index in range(12)]
    for email in emails:
        AccountStore(db).upsert(1, email, max_jobs=3, plan="standard", num_plan_credits=99)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(emails))

    def attempt(email: str) -> None:
        task = replace(new_task(credits=1), email=email)
        barrier.wait()
        try:
            tasks.admit(task, max_jobs=3, max_queue_depth=4)
            outcomes.append("admitted")
        except errors.QueueFull:
            outcomes.append("full")

    threads = [threading.Thread(target=attempt, args=(email,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["admitted"] * 4 + ["full"] * 8
    assert len(tasks.in_flight()) == 4


def wait_for_blocked_writer(db: Database) -> None:
    """Until another session waits on a lock: on PostgreSQL the admission's insert on the
    unique index; on SQLite the writer queues on the database lock (nothing to observe)."""
    if db.is_sqlite:
        time.sleep(0.3)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.read() as conn:
            if conn.execute(query).scalar_one():
                return
        time.sleep(0.02)
    raise AssertionError("the admission never blocked on the other transaction")


@pytest.mark.parametrize("moderated", [False, True])
@pytest.mark.parametrize("same_body", [True, False])
def test_same_key_raced_on_two_accounts_answers_the_winner(
    db: Database, tasks: TaskStore, same_body: bool, moderated: bool
) -> None:
    """The account lock does not cover a user's other accounts: a task holding the key is
    inserted, uncommitted, for another account while the admission runs; the admission must
    answer with that task (or Conflict for another body), never the unique index's error. A
    flagged prompt's task is stored the same way, and its repeat adds no strike."""
    AccountStore(db).upsert(1, "b@example.com", max_jobs=3, plan="standard", num_plan_credits=99)
    winner = replace(new_task(credits=1), email="b@example.com")
    outcome: list[object] = []

    def loser() -> None:
        key = ("k1", "hash-a")
        try:
            if moderated:
                since, task = utcnow() - timedelta(hours=1), new_task(credits=1)
                stored = tasks.add_moderated(
                    task, "sexual", suspend_after=1, since=since, idempotency=key
                )
                outcome.append(stored)
            else:
                outcome.append(admit(tasks, new_task(credits=1), idempotency=key))
        except Exception as error:
            outcome.append(error)

    with db.write() as conn:
        values = task_values(winner) | {"idempotency_key": "k1", "request_hash": "hash-a"}
        if not same_body:
            values["request_hash"] = "hash-b"
        conn.execute(insert(tasks_table).values(**values))
        thread = threading.Thread(target=loser)
        thread.start()
        wait_for_blocked_writer(db)
    thread.join(10)
    if same_body:
        assert outcome == [False if moderated else (tasks.get(winner.uuid), False)]
    else:
        assert len(outcome) == 1 and isinstance(outcome[0], errors.Conflict)
    assert [t.uuid for t in tasks.in_flight(1)] == [winner.uuid]
    account = AccountStore(db).get(1, EMAIL)
    assert account is not None and account.credits_used == 0  # the loser's charge rolled back
    with db.read() as conn:  # nor did its strike stay
        assert conn.execute(select(func.count()).select_from(moderation_events)).scalar_one() == 0


def test_an_update_of_an_account_deleted_meanwhile_is_a_400_not_a_half_insert(
    db: Database, tasks: TaskStore
) -> None:
    """The service saw the account, then it was deleted: the update (no maxJobs) may not
    insert a row without its slot count (found by schemathesis as a 500)."""
    store = AccountStore(db)
    store.upsert(1, "gone@example.com", max_jobs=2, plan="standard", num_plan_credits=5)
    assert store.delete(1, "gone@example.com") == []  # deleted, with no assets to remove
    with pytest.raises(errors.BadRequest, match="maxJobs is required"):
        store.upsert(1, "gone@example.com", {"plan": "standard"}, reply_url=None, plan="unlimited")
    assert store.get(1, "gone@example.com") is None
    made = store.upsert(
        1, "new@example.com", {"plan": "standard", "num_plan_credits": 7}, max_jobs=1
    )
    assert (made.max_jobs, made.plan, made.num_plan_credits) == (1, "standard", 7)
