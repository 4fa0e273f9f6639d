"""The store's contract suite, run against SQLite (a file) and PostgreSQL (a fresh database)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.contracts.tasks import EMAIL, admit, new_task
from vidmorph import errors
from vidmorph.domain.clock import utcnow
from vidmorph.domain.states import ALLOWED, TaskStatus
from vidmorph.store.accounts import AccountStore
from vidmorph.store.db import Database
from vidmorph.store.tasks import TaskStore
from vidmorph.store.users import UserStore


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


def test_every_allowed_edge_is_taken_and_others_refused(tasks: TaskStore) -> None:
    for source, targets in ALLOWED.items():
        for target in TaskStatus:
            if source is TaskStatus.THROTTLED:  # only admission makes one (no free slot)
                task = tasks.admit(
                    new_task(credits=0), max_jobs=0, max_queue_depth=99, throttle=True
                ).task
                assert task.status is TaskStatus.THROTTLED
            else:
                task = admit(tasks, new_task(credits=0), max_jobs=100)[0]
            if source not in (TaskStatus.PENDING, TaskStatus.THROTTLED):
                _force(tasks, task.uuid, source)
            won = tasks.transition(task.uuid, target)
            assert won == (target in targets), (source, target)
            tasks.transition(task.uuid, TaskStatus.CANCELLED)


def test_throttled_tasks_take_free_slots_oldest_first(tasks: TaskStore) -> None:
    running = admit(tasks, new_task(credits=1), max_jobs=1)[0]
    waiting = [
        tasks.admit(new_task(credits=1), max_jobs=1, max_queue_depth=99, throttle=True).task
        for _ in range(3)
    ]
    assert {t.status for t in waiting} == {TaskStatus.THROTTLED}
    with pytest.raises(errors.AccountBusy):  # useapi's admission still refuses
        tasks.admit(new_task(credits=1), max_jobs=1, max_queue_depth=99)
    # The account has 3 slots (conftest): one is held, two are free.
    assert tasks.promote_throttled(1, EMAIL) == [waiting[0].uuid, waiting[1].uuid]
    assert tasks.promote_throttled(1, EMAIL) == []
    assert tasks.throttled_accounts() == [(1, EMAIL)]
    assert tasks.transition(running.uuid, TaskStatus.CANCELLED)
    assert tasks.promote_throttled(1, EMAIL) == [waiting[2].uuid]
    assert tasks.throttled_accounts() == []
    assert [t.status for t in tasks.in_flight(1)] == [TaskStatus.PENDING] * 3


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
