"""TaskStore: admission (`admission.py`), status changes (`transitions.py`), tenant-scoped
reads, queue figures (`queue.py`) and speed figures."""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import ARRAY, Select, String, any_, func, select

from vidmorph.domain.models import Account, Asset, Task
from vidmorph.domain.states import IN_FLIGHT, TERMINAL, TaskStatus
from vidmorph.store.accounts import to_account
from vidmorph.store.admission import ADMISSION_SQL, TaskAdmission
from vidmorph.store.batched import Batched
from vidmorph.store.db import Database
from vidmorph.store.joins import prefixed, split
from vidmorph.store.prepared import Statements, arg
from vidmorph.store.queue import LineSnapshot, QueueFigures
from vidmorph.store.tables import accounts, assets, deliveries, tasks
from vidmorph.store.task_rows import (
    IN_FLIGHT_VALUES,
    artifacts_of,
    delete_tasks,
    task_artifacts,
    to_asset,
    to_task,
)
from vidmorph.store.throttle import TaskThrottle
from vidmorph.store.transitions import TaskTransitions
from vidmorph.store.usage import UsageStore

_source = assets.alias("source")
#: the task row, its source asset and its account, in one statement (GET /tasks/{taskId})
_VIEW_COLUMNS = [*tasks.c, *prefixed(_source, "source_"), *prefixed(accounts, "account_")]
_VIEW_FROM = tasks.outerjoin(
    _source,
    (_source.c.uuid == tasks.c.params["asset_uuid"].as_string())
    & (_source.c.user_id == tasks.c.user_id),
).outerjoin(accounts, (accounts.c.user_id == tasks.c.user_id) & (accounts.c.email == tasks.c.email))


#: where a view row holds the task's own uuid, user and account (the batched poll's key,
#: tenancy, and the account a useapi taskId names)
_UUID, _USER = _VIEW_COLUMNS.index(tasks.c.uuid), _VIEW_COLUMNS.index(tasks.c.user_id)
_EMAIL = _VIEW_COLUMNS.index(tasks.c.email)


def _view_many_sql() -> Select[Any]:
    """The view's rows for many tasks (PostgreSQL's batched polls, store.async_read)."""
    return (
        select(*_VIEW_COLUMNS)
        .select_from(_VIEW_FROM)
        .where(tasks.c.uuid == any_(arg("p_keys", ARRAY(String))))
    )


def _view_sql() -> Select[Any]:
    return (
        select(*_VIEW_COLUMNS)
        .select_from(_VIEW_FROM)
        .where(tasks.c.uuid == arg("p_uuid"), tasks.c.user_id == arg("p_user"))
    )


def _pending_waits_sql() -> Select[Any]:
    return (
        select(tasks.c.uuid, tasks.c.priority, tasks.c.task_type, tasks.c.updated_at)
        .where(tasks.c.status == TaskStatus.PENDING.value)
        .order_by(tasks.c.priority, tasks.c.created_at)
    )


def _owned(row: tuple[Any, ...] | None, user_id: int) -> tuple[Any, ...] | None:
    """The row if it is the user's task: another user's is as good as absent (a 404)."""
    return row if row is not None and row[_USER] == user_id else None


class TaskStore(TaskAdmission, TaskThrottle, TaskTransitions):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue = QueueFigures(db)
        self.usage = UsageStore(db)
        self.sql = Statements(
            db.engine.dialect,
            {
                "view": _view_sql,
                "view_many": _view_many_sql,
                "pending_waits": _pending_waits_sql,
                **ADMISSION_SQL,
            },
        )
        self._polls = None
        if db.async_reads is not None:
            self._polls = Batched(db.async_reads, lambda: self.sql["view_many"], itemgetter(_UUID))

    def view(self, uuid: str, user_id: int) -> tuple[Task, Asset | None, Account | None] | None:
        """The user's task with its source asset and account (joined, one statement), and its
        artifacts (a second, only once it SUCCEEDED, the only status that has any)."""
        row = self.view_row(uuid, user_id)
        return None if row is None else self.view_of(row)

    def view_row(self, uuid: str, user_id: int) -> tuple[Any, ...] | None:
        """The joined row `view` reads, as the driver returned it: equal rows make equal
        views, so a poller's cache compares it with the row it saw before."""
        with self.db.raw_read() as raw:
            if self.db.is_sqlite:
                return self.sql["view"].raw_or_none(raw, p_uuid=uuid, p_user=user_id)
            # PostgreSQL reads views with the batched polls' statement (one key here), so
            # every view row there comes from one statement.
            rows = self.sql["view_many"].raw_rows(raw, p_keys=[uuid])
        return _owned(rows[0] if rows else None, user_id)

    async def view_row_async(self, uuid: str, user_id: int) -> tuple[Any, ...] | None:
        """`view_row` awaited in the event loop (PostgreSQL, store.async_read): the same row,
        read in one statement with the other polls of this turn of the loop."""
        assert self._polls is not None
        return _owned(await self._polls.get(uuid), user_id)

    @staticmethod
    def email_of(row: tuple[Any, ...]) -> str:
        """The account email of the task a `view_row` row holds."""
        return str(row[_EMAIL])

    def view_of(self, row: tuple[Any, ...]) -> tuple[Task, Asset | None, Account | None]:
        """What `view` makes of a row from `view_row`."""
        statement = self.sql["view" if self.db.is_sqlite else "view_many"]
        task_row, source, account = split(statement.convert(row), (tasks, assets, accounts))
        assert task_row is not None
        artifacts: tuple[Asset, ...] = ()
        if task_row.status == TaskStatus.SUCCEEDED.value:  # its artifacts never change again
            with self.db.read() as conn:
                artifacts = task_artifacts(conn, task_row.uuid)
        return (
            to_task(task_row, artifacts),
            None if source is None else to_asset(source),
            None if account is None else to_account(account),
        )

    def get(self, uuid: str, user_id: int | None = None) -> Task | None:
        """The task with its artifacts; None when absent or owned by another user."""
        query = select(tasks).where(tasks.c.uuid == uuid)
        if user_id is not None:
            query = query.where(tasks.c.user_id == user_id)
        with self.db.read() as conn:
            row = conn.execute(query).one_or_none()
            if row is None:
                return None
            return to_task(row, task_artifacts(conn, uuid))

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
            found = artifacts_of(conn, [r.uuid for r in rows])
        return [to_task(r, found.get(r.uuid, ())) for r in rows]

    def in_flight(self, user_id: int | None = None) -> list[Task]:
        """PENDING and RUNNING tasks in queue order (explore mode last)."""
        query = select(tasks).where(tasks.c.status.in_(IN_FLIGHT_VALUES))
        if user_id is not None:
            query = query.where(tasks.c.user_id == user_id)
        query = query.order_by(tasks.c.priority, tasks.c.created_at)
        with self.db.read() as conn:
            return [to_task(r) for r in conn.execute(query).all()]

    def pending_waits(self) -> list[tuple[str, int, str, datetime]]:
        """(uuid, priority, task type, last change) of each PENDING task, in queue order: what
        the sweeper offers the dispatcher again, read without building whole tasks (the sweep
        runs every few seconds over however long the queue is)."""
        statement = self.sql["pending_waits"]
        with self.db.raw_read() as raw:
            return [tuple(statement.convert(row)) for row in statement.raw_rows(raw)]

    def place_in_line(self, task: Task) -> int:
        """1 for the next PENDING task to start, 2 for the one after it, and so on (from the
        line as of at most a second ago)."""
        return self.line().place(task.params.priority, task.created_at, task.uuid)

    def line(self) -> LineSnapshot:
        return self.queue.snapshot()

    def counts(self) -> list[tuple[str, str, int]]:
        """(status, task type, how many) over every task, for /metrics."""
        query = select(tasks.c.status, tasks.c.task_type, func.count()).group_by(
            tasks.c.status, tasks.c.task_type
        )
        with self.db.read() as conn:
            return [(r[0], r[1], int(r[2])) for r in conn.execute(query).all()]

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
        """Delete a terminal task and its artifact rows; returns it so blobs can go too. None
        when this call deleted nothing: no such task, one still in flight, or one that a
        deletion racing this one removed first (only one of them is told it deleted it)."""
        task = self.get(uuid, user_id)
        if task is None or task.status in IN_FLIGHT:
            return None
        with self.db.write() as conn:
            deleted = delete_tasks(conn, self.usage, [task], "the task was deleted")
        return task if deleted else None
