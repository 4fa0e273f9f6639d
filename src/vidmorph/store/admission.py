"""Task admission: a new task takes an account's slot and credits, or a typed refusal.

One transaction holds the account's lock (a row lock on PostgreSQL, the database write lock on
SQLite) while the slot, queue depth and credits are checked and the task inserted, so
concurrent admissions in any process never exceed `maxJobs`. Idempotency-Key repeats answer
with the first task; a flagged prompt's task is stored FAILED with a strike on the account.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from vidmorph import errors
from vidmorph.domain.clock import utcnow
from vidmorph.domain.ids import format_id
from vidmorph.domain.models import Task
from vidmorph.store.db import Database
from vidmorph.store.tables import accounts, moderation_events, tasks
from vidmorph.store.task_rows import IN_FLIGHT_VALUES, task_artifacts, task_values, to_task
from vidmorph.store.transitions import charge


class TaskAdmission:
    db: Database

    def admit(
        self,
        task: Task,
        *,
        max_jobs: int,
        max_queue_depth: int,
        idempotency: tuple[str, str] | None = None,
    ) -> tuple[Task, bool]:
        """Insert a PENDING task if the account has a free slot; (task, created).

        One transaction holds the account's lock (row lock on PostgreSQL, the database write
        lock on SQLite), so concurrent callers in any process never exceed `max_jobs`; the
        queue depth is counted under the queue lock (`Database.lock_queue`), so neither is
        `max_queue_depth` exceeded.
        Raises AccountSuspended, AccountBusy, QueueFull, InsufficientCredits or Conflict.
        """
        try:
            return self._admit(task, max_jobs, max_queue_depth, idempotency)
        except IntegrityError as error:
            # The lock is the account's, the Idempotency-Key the user's: the same key sent at
            # once for two of a user's accounts can pass both checks, and the loser's insert
            # hits the unique index. Its transaction rolled back; the winner's task answers.
            return self._idempotent_winner(error, task.user_id, idempotency), False

    def _admit(
        self,
        task: Task,
        max_jobs: int,
        max_queue_depth: int,
        idempotency: tuple[str, str] | None,
    ) -> tuple[Task, bool]:
        with self.db.write() as conn:
            acct = _lock_account(conn, task.user_id, task.email)
            if idempotency is not None:
                first = _by_idempotency(conn, task.user_id, *idempotency)
                if first is not None:
                    return first, False
            if acct.suspended:
                raise errors.AccountSuspended()
            running = conn.execute(
                select(tasks.c.uuid, tasks.c.reply_url, tasks.c.reply_ref)
                .where(tasks.c.user_id == task.user_id, tasks.c.email == task.email)
                .where(tasks.c.status.in_(IN_FLIGHT_VALUES))
                .order_by(tasks.c.created_at)
            ).all()
            if len(running) >= max_jobs:
                raise errors.AccountBusy(task.email, max_jobs, _running_list(task, running))
            self.db.lock_queue(conn)
            depth = conn.execute(
                select(func.count()).select_from(tasks).where(tasks.c.status.in_(IN_FLIGHT_VALUES))
            ).scalar_one()
            if depth >= max_queue_depth:
                raise errors.QueueFull()
            if task.credits > acct.num_plan_credits - acct.credits_used:
                raise errors.InsufficientCredits()
            charge(conn, task.user_id, task.email, task.credits)
            values = task_values(task)
            if idempotency is not None:
                values.update(idempotency_key=idempotency[0], request_hash=idempotency[1])
            conn.execute(insert(tasks).values(**values))
        return task, True

    def add_moderated(
        self,
        task: Task,
        category: str,
        *,
        suspend_after: int,
        since: datetime,
        idempotency: tuple[str, str] | None = None,
    ) -> bool:
        """Store a task that FAILED moderation; True when this one suspends the account.

        With `idempotency`, a repeat of the same request stores nothing and adds no strike.
        """
        try:
            return self._add_moderated(task, category, suspend_after, since, idempotency)
        except IntegrityError as error:  # the same key at once on two accounts: see `admit`
            self._idempotent_winner(error, task.user_id, idempotency)
            return False

    def _add_moderated(
        self,
        task: Task,
        category: str,
        suspend_after: int,
        since: datetime,
        idempotency: tuple[str, str] | None,
    ) -> bool:
        with self.db.write() as conn:
            _lock_account(conn, task.user_id, task.email)
            values = task_values(task)
            if idempotency is not None:
                if _by_idempotency(conn, task.user_id, *idempotency) is not None:
                    return False
                values.update(idempotency_key=idempotency[0], request_hash=idempotency[1])
            conn.execute(insert(tasks).values(**values))
            conn.execute(
                insert(moderation_events).values(
                    user_id=task.user_id, email=task.email, category=category, created_at=utcnow()
                )
            )
            strikes = conn.execute(
                select(func.count())
                .select_from(moderation_events)
                .where(moderation_events.c.user_id == task.user_id)
                .where(moderation_events.c.email == task.email)
                .where(moderation_events.c.created_at >= since)
            ).scalar_one()
            if strikes < suspend_after:
                return False
            conn.execute(
                update(accounts)
                .where(accounts.c.user_id == task.user_id, accounts.c.email == task.email)
                .values(suspended=True, updated_at=utcnow())
            )
            return True

    def _idempotent_winner(
        self, error: IntegrityError, user_id: int, idempotency: tuple[str, str] | None
    ) -> Task:
        """After a unique-index violation: the task that took the key first (Conflict for
        another body); re-raises the violation when no key explains it."""
        first = None if idempotency is None else self.find_idempotent(user_id, *idempotency)
        if first is None:
            raise error
        return first

    def find_idempotent(self, user_id: int, key: str, request_hash: str) -> Task | None:
        """The task first created with this Idempotency-Key; Conflict for another body."""
        with self.db.read() as conn:
            return _by_idempotency(conn, user_id, key, request_hash)


def _lock_account(conn: Connection, user_id: int, email: str) -> Row[Any]:
    row = conn.execute(
        select(accounts)
        .where(accounts.c.user_id == user_id, accounts.c.email == email)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise errors.NotFound(f"Account {email} not found.")
    return row


def _by_idempotency(conn: Connection, user_id: int, key: str, request_hash: str) -> Task | None:
    row = conn.execute(
        select(tasks).where(tasks.c.user_id == user_id, tasks.c.idempotency_key == key)
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise errors.Conflict()
    return to_task(row, task_artifacts(conn, row.uuid))


def _running_list(task: Task, running: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "email": task.email,
            "taskId": format_id(task.user_id, task.email, "task", r.uuid),
            "id": r.uuid,
            "replyUrl": r.reply_url,
            "replyRef": r.reply_ref,
        }
        for r in running
    ]
