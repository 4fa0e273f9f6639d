"""TaskStore: admission under maxJobs, tenant-scoped reads, queue position and speed figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from vidmorph import errors
from vidmorph.domain.clock import utcnow
from vidmorph.domain.ids import format_id
from vidmorph.domain.models import Asset, GenerationParams, Task
from vidmorph.domain.states import IN_FLIGHT, TERMINAL, TaskStatus
from vidmorph.store.assets import to_asset
from vidmorph.store.db import Database
from vidmorph.store.tables import accounts, assets, deliveries, moderation_events, tasks
from vidmorph.store.transitions import TaskTransitions, charge

_IN_FLIGHT = [s.value for s in IN_FLIGHT]


def to_task(row: Row[Any], artifacts: tuple[Asset, ...] = ()) -> Task:
    return Task(
        uuid=row.uuid,
        user_id=row.user_id,
        email=row.email,
        task_type=row.task_type,
        status=TaskStatus(row.status),
        params=GenerationParams(**row.params),
        reply_url=row.reply_url,
        reply_ref=row.reply_ref,
        credits=row.credits,
        progress_ratio=row.progress_ratio,
        progress_text=row.progress_text,
        error=row.error,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        artifacts=artifacts,
    )


def task_values(task: Task) -> dict[str, Any]:
    return {
        "uuid": task.uuid,
        "user_id": task.user_id,
        "email": task.email,
        "task_type": task.task_type,
        "status": task.status.value,
        "priority": task.params.priority,
        "params": asdict(task.params),
        "reply_url": task.reply_url,
        "reply_ref": task.reply_ref,
        "credits": task.credits,
        "error": task.error,
        "attempts": 0,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "finished_at": task.finished_at,
    }


class TaskStore(TaskTransitions):
    def __init__(self, db: Database) -> None:
        self.db = db

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
                .where(tasks.c.status.in_(_IN_FLIGHT))
                .order_by(tasks.c.created_at)
            ).all()
            if len(running) >= max_jobs:
                raise errors.AccountBusy(task.email, max_jobs, _running_list(task, running))
            self.db.lock_queue(conn)
            depth = conn.execute(
                select(func.count()).select_from(tasks).where(tasks.c.status.in_(_IN_FLIGHT))
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

    def get(self, uuid: str, user_id: int | None = None) -> Task | None:
        """The task with its artifacts; None when absent or owned by another user."""
        query = select(tasks).where(tasks.c.uuid == uuid)
        if user_id is not None:
            query = query.where(tasks.c.user_id == user_id)
        with self.db.read() as conn:
            row = conn.execute(query).one_or_none()
            if row is None:
                return None
            return to_task(row, _artifacts(conn, uuid))

    def page(
        self,
        user_id: int,
        email: str | None,
        statuses: list[TaskStatus],
        offset: int,
        limit: int,
    ) -> list[Task]:
        query = select(tasks).where(tasks.c.user_id == user_id)
        if email is not None:
            query = query.where(tasks.c.email == email)
        if statuses:
            query = query.where(tasks.c.status.in_([s.value for s in statuses]))
        query = query.order_by(tasks.c.created_at.desc(), tasks.c.uuid).offset(offset).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            found = _artifacts_of(conn, [r.uuid for r in rows])
        return [to_task(r, found.get(r.uuid, ())) for r in rows]

    def in_flight(self, user_id: int | None = None) -> list[Task]:
        """PENDING and RUNNING tasks in queue order (explore mode last)."""
        query = select(tasks).where(tasks.c.status.in_(_IN_FLIGHT))
        if user_id is not None:
            query = query.where(tasks.c.user_id == user_id)
        query = query.order_by(tasks.c.priority, tasks.c.created_at)
        with self.db.read() as conn:
            return [to_task(r) for r in conn.execute(query).all()]

    def place_in_line(self, task: Task) -> int:
        """1 for the next PENDING task to start, 2 for the one after it, and so on."""
        prio = task.params.priority
        ahead = and_(
            tasks.c.status == TaskStatus.PENDING.value,
            (tasks.c.priority < prio)
            | ((tasks.c.priority == prio) & (tasks.c.created_at < task.created_at)),
        )
        with self.db.read() as conn:
            return 1 + int(conn.execute(select(func.count()).where(ahead)).scalar_one())

    def running_count(self) -> int:
        with self.db.read() as conn:
            query = select(func.count()).where(tasks.c.status == TaskStatus.RUNNING.value)
            return int(conn.execute(query).scalar_one())

    def finished_without_callback(self, before: datetime, limit: int = 100) -> list[str]:
        """Finished tasks with a replyUrl but no terminal delivery row: a process died between
        finishing the task and queueing its callback."""
        queued = select(deliveries.c.id).where(
            deliveries.c.task_uuid == tasks.c.uuid, deliveries.c.terminal.is_(True)
        )
        query = (
            select(tasks.c.uuid)
            .where(tasks.c.status.in_([s.value for s in TERMINAL]))
            .where(tasks.c.reply_url.is_not(None), tasks.c.finished_at < before)
            .where(~queued.exists())
            .limit(limit)
        )
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    def recent_runs(self, limit: int = 20) -> list[tuple[float, float]]:
        """(wall seconds, output seconds) of the latest successful runs, newest first."""
        query = (
            select(tasks.c.started_at, tasks.c.finished_at, tasks.c.params)
            .where(tasks.c.status == TaskStatus.SUCCEEDED.value)
            .where(tasks.c.started_at.is_not(None))
            .order_by(tasks.c.finished_at.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            ((r.finished_at - r.started_at).total_seconds(), float(r.params["seconds"]))
            for r in rows
        ]

    def delete_finished(self, user_id: int, uuid: str) -> Task | None:
        """Delete a terminal task and its artifact rows; returns it so blobs can go too."""
        task = self.get(uuid, user_id)
        if task is None or task.status in IN_FLIGHT:
            return task
        with self.db.write() as conn:
            conn.execute(delete(assets).where(assets.c.task_uuid == uuid))
            conn.execute(delete(tasks).where(tasks.c.uuid == uuid))
        return task


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
    return to_task(row, _artifacts(conn, row.uuid))


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


def _artifacts(conn: Connection, uuid: str) -> tuple[Asset, ...]:
    return _artifacts_of(conn, [uuid]).get(uuid, ())


def _artifacts_of(conn: Connection, uuids: list[str]) -> dict[str, tuple[Asset, ...]]:
    """The output assets of several tasks in one query, by task uuid."""
    if not uuids:
        return {}
    rows = conn.execute(
        select(assets).where(assets.c.task_uuid.in_(uuids)).order_by(assets.c.created_at)
    ).all()
    found: dict[str, list[Asset]] = {}
    for row in rows:
        found.setdefault(row.task_uuid, []).append(to_asset(row))
    return {uuid: tuple(items) for uuid, items in found.items()}
