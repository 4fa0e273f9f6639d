"""The store's contract suite, run against SQLite (a file) and PostgreSQL (a fresh database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import GenerationParams, Task
from vidmorph.domain.states import ALLOWED, TaskStatus
from vidmorph.store.accounts import AccountStore
from vidmorph.store.db import Database
from vidmorph.store.tables import moderation_events
from vidmorph.store.tables import tasks as tasks_table
from vidmorph.store.tasks import TaskStore, task_values
from vidmorph.store.users import UserStore

EMAIL = "a@example.com"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        database = Database(url)
        database.migrate()
        yield database
        database.close()
    else:
        url = request.getfixturevalue("postgres_url")
        database = Database(url)
        database.migrate()
        yield database
        database.close()


@pytest.fixture
def tasks(db: Database) -> TaskStore:
    UserStore(db).create("whsec_dGVzdA==", 1)
    UserStore(db).create("whsec_dGVzdA==", 2)
    AccountStore(db).upsert(1, EMAIL, max_jobs=3, plan="standard", num_plan_credits=1000)
    return TaskStore(db)


def new_task(user_id: int = 1, credits: int = 100, explore: bool = False) -> Task:
    now = utcnow()
    params = GenerationParams(
        asset_uuid=ids.new_uuid(),
        text_prompt="night",
        structure_transformation=3.0,
        seconds=10,
        seed=7,
        explore_mode=explore,
        width=1280,
        height=768,
    )
    return Task(
        uuid=ids.new_uuid(),
        user_id=user_id,
        email=EMAIL,
        task_type="gen3a",
        status=TaskStatus.PENDING,
        params=params,
        reply_url=None,
        reply_ref="ref",
        credits=credits,
        progress_ratio=None,
        progress_text=None,
        error=None,
        attempts=0,
        lease_owner=None,
        lease_expires_at=None,
        created_at=now,
        updated_at=now,
    )


def admit(tasks: TaskStore, task: Task, max_jobs: int = 3, **kw: object) -> tuple[Task, bool]:
    return tasks.admit(task, max_jobs=max_jobs, max_queue_depth=100, **kw)  # type: ignore[arg-type]


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


def test_busy_error_lists_the_running_tasks(tasks: TaskStore) -> None:
    first = admit(tasks, new_task(credits=1), max_jobs=1)[0]
    with pytest.raises(errors.AccountBusy) as info:
        admit(tasks, new_task(credits=1), max_jobs=1)
    running = info.value.extra["runningTasks"][EMAIL]
    assert [r["id"] for r in running] == [first.uuid]
    assert running[0]["taskId"] == first.task_id and running[0]["replyRef"] == "ref"


def test_credits_are_reserved_and_released_on_cancel(db: Database, tasks: TaskStore) -> None:
    accounts = AccountStore(db)
    task = admit(tasks, new_task(credits=400))[0]
    assert accounts.get(1, EMAIL).credits_used == 400  # type: ignore[union-attr]
    assert tasks.transition(task.uuid, TaskStatus.CANCELLED)
    assert accounts.get(1, EMAIL).credits_used == 0  # type: ignore[union-attr]


def test_short_credits_is_insufficient_but_explore_mode_is_free(tasks: TaskStore) -> None:
    with pytest.raises(errors.InsufficientCredits):
        admit(tasks, new_task(credits=1001))
    free = admit(tasks, new_task(credits=0, explore=True))[0]
    assert free.status is TaskStatus.PENDING


def test_global_queue_depth_gives_queue_full(tasks: TaskStore) -> None:
    admit(tasks, new_task(credits=1))
    with pytest.raises(errors.QueueFull):
        tasks.admit(new_task(credits=1), max_jobs=3, max_queue_depth=1)


def test_idempotency_returns_first_task_and_conflicts_on_other_body(tasks: TaskStore) -> None:
    first, created = admit(tasks, new_task(credits=1), idempotency=("k1", "hash-a"))
    again, created_again = admit(tasks, new_task(credits=1), idempotency=("k1", "hash-a"))
    assert created and not created_again and again.uuid == first.uuid
    with pytest.raises(errors.Conflict):
        admit(tasks, new_task(credits=1), idempotency=("k1", "hash-b"))


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


def test_every_allowed_edge_is_taken_and_others_refused(tasks: TaskStore) -> None:
    for source, targets in ALLOWED.items():
        if source is TaskStatus.THROTTLED:
            continue
        for target in TaskStatus:
            task = admit(tasks, new_task(credits=0), max_jobs=100)[0]
            if source is not TaskStatus.PENDING:
                _force(tasks, task.uuid, source)
            won = tasks.transition(task.uuid, target)
            assert won == (target in targets), (source, target)
            tasks.transition(task.uuid, TaskStatus.CANCELLED)


def _force(tasks: TaskStore, uuid: str, status: TaskStatus) -> None:
    path = {
        TaskStatus.RUNNING: [TaskStatus.RUNNING],
        TaskStatus.SUCCEEDED: [TaskStatus.RUNNING, TaskStatus.SUCCEEDED],
        TaskStatus.FAILED: [TaskStatus.FAILED],
        TaskStatus.CANCELLED: [TaskStatus.CANCELLED],
    }[status]
    for step in path:
        assert tasks.transition(uuid, step)


def test_a_task_is_claimed_once(tasks: TaskStore) -> None:
    task = admit(tasks, new_task())[0]
    assert tasks.claim(task.uuid, "w1", 30) is not None
    assert tasks.claim(task.uuid, "w2", 30) is None
    assert not tasks.heartbeat(task.uuid, "w2", 30)
    assert tasks.heartbeat(task.uuid, "w1", 30)


def test_lapsed_lease_requeues_then_fails_after_max_attempts(
    db: Database, tasks: TaskStore
) -> None:
    task = admit(tasks, new_task(credits=50))[0]
    error = {"reason": "INTERNAL.WORKER_LOST"}
    for attempt in (1, 2):
        assert tasks.claim(task.uuid, f"w{attempt}", 0.01) is not None
        time.sleep(0.05)
        assert task.uuid in tasks.lapsed()
        expected = TaskStatus.PENDING if attempt == 1 else TaskStatus.FAILED
        assert tasks.requeue_lapsed(task.uuid, 2, error) is expected
    final = tasks.get(task.uuid)
    assert final is not None and final.status is TaskStatus.FAILED and final.error == error
    assert AccountStore(db).get(1, EMAIL).credits_used == 0  # type: ignore[union-attr]


def test_live_lease_is_not_lapsed(tasks: TaskStore) -> None:
    task = admit(tasks, new_task())[0]
    tasks.claim(task.uuid, "w1", 60)
    assert tasks.lapsed() == []
    assert tasks.lapsed(utcnow() + timedelta(seconds=120)) == [task.uuid]


def test_other_users_cannot_read_a_task(tasks: TaskStore) -> None:
    task = admit(tasks, new_task())[0]
    assert tasks.get(task.uuid, 1) is not None
    assert tasks.get(task.uuid, 2) is None
    assert tasks.page(2, None, [], 0, 50) == []


def test_explore_mode_tasks_queue_after_the_others(tasks: TaskStore) -> None:
    relaxed = admit(tasks, new_task(credits=0, explore=True))[0]
    normal = admit(tasks, replace(new_task(credits=0)))[0]
    assert [t.uuid for t in tasks.in_flight()] == [normal.uuid, relaxed.uuid]
    assert tasks.place_in_line(normal) == 1 and tasks.place_in_line(relaxed) == 2


def test_token_verification_uses_stored_hashes(db: Database) -> None:
    users = UserStore(db)
    users.create("whsec_dGVzdA==", 5)
    users.add_token(5, "user:5-secret")
    assert users.verify_token(5, "user:5-secret")
    assert not users.verify_token(5, "user:5-other")
    assert not users.verify_token(6, "user:5-secret")
    with db.read() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM tokens").scalars().all()
    assert "user:5-secret" not in stored
