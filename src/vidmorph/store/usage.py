"""UsageStore: what an account spent, per UTC day and task type, for Runway's organization
figures. Counted from the task rows, plus what deleted tasks had spent: a task's deletion
folds its credits and its count into `spent_usage`, in the transaction that deletes it, so
deleting tasks never lowers the figures (Runway keeps charging what was spent)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import ColumnElement, Connection, func, select, update

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Task
from vidmorph.domain.states import RELEASES_CREDITS
from vidmorph.store.db import Database
from vidmorph.store.tables import spent_usage, tasks


def spent_credits(task: Task) -> int:
    """The credits `task` keeps spent: none once FAILED or CANCELLED gave them back."""
    return 0 if task.status in RELEASES_CREDITS else max(task.credits, 0)


def _kept_spending(user_id: int, email: str) -> tuple[ColumnElement[bool], ...]:
    """The account's kept tasks that hold credits still (FAILED and CANCELLED gave theirs)."""
    return (
        tasks.c.user_id == user_id,
        tasks.c.email == email,
        tasks.c.status.not_in(sorted(RELEASES_CREDITS)),
        tasks.c.credits > 0,
    )


def spent_total(conn: Connection, user_id: int, email: str) -> int:
    """Every credit the account's tasks spent, deleted ones too: what an account made again
    under the same email starts from (deleting it must not hand its allowance back)."""
    kept = select(func.coalesce(func.sum(tasks.c.credits), 0)).where(
        *_kept_spending(user_id, email)
    )
    deleted = select(func.coalesce(func.sum(spent_usage.c.credits), 0)).where(
        spent_usage.c.user_id == user_id, spent_usage.c.email == email
    )
    return int(conn.execute(kept).scalar_one()) + int(conn.execute(deleted).scalar_one())


class UsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def fold(self, conn: Connection, task: Task) -> None:
        """Add deleted `task` to its day's figures; call in the transaction deleting its row,
        once that DELETE removed it (a second deletion racing it must not count it twice)."""
        key = {
            "user_id": task.user_id,
            "email": task.email,
            "day": task.created_at.date(),
            "task_type": task.task_type,
        }
        conn.execute(self.db.insert_ignore(spent_usage).values(**key, credits=0, tasks=0))
        conn.execute(
            update(spent_usage)
            .where(*(spent_usage.c[name] == value for name, value in key.items()))
            .values(
                credits=spent_usage.c.credits + spent_credits(task),
                tasks=spent_usage.c.tasks + 1,
            )
        )

    def created_today(self, user_id: int, email: str) -> dict[str, int]:
        """Tasks the account created since midnight UTC, by task type, deleted ones too."""
        midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        kept = (
            select(tasks.c.task_type, func.count())
            .where(tasks.c.user_id == user_id, tasks.c.email == email)
            .where(tasks.c.created_at >= midnight)
            .group_by(tasks.c.task_type)
        )
        deleted = select(spent_usage.c.task_type, spent_usage.c.tasks).where(
            spent_usage.c.user_id == user_id,
            spent_usage.c.email == email,
            spent_usage.c.day == midnight.date(),
        )
        counts: dict[str, int] = defaultdict(int)
        with self.db.read() as conn:
            for query in (kept, deleted):
                for task_type, count in conn.execute(query):
                    counts[task_type] += int(count)
        return dict(counts)

    def credits_by_day(
        self, user_id: int, email: str, start: datetime, before: datetime
    ) -> list[tuple[date, str, int]]:
        """Credits the account's tasks created in [start, before) spent, by UTC day and task
        type, in that order; FAILED and CANCELLED tasks released theirs. Grouped in the
        database, deleted tasks' added from their folded rows."""
        day = func.date(tasks.c.created_at)
        kept = (
            select(day, tasks.c.task_type, func.sum(tasks.c.credits))
            .where(*_kept_spending(user_id, email))
            .where(tasks.c.created_at >= start, tasks.c.created_at < before)
            .group_by(day, tasks.c.task_type)
        )
        deleted = select(spent_usage.c.day, spent_usage.c.task_type, spent_usage.c.credits).where(
            spent_usage.c.user_id == user_id,
            spent_usage.c.email == email,
            spent_usage.c.day >= start.date(),
            spent_usage.c.day < before.date(),
            spent_usage.c.credits > 0,
        )
        spent: dict[tuple[date, str], int] = defaultdict(int)
        with self.db.read() as conn:
            for query in (kept, deleted):
                # SQLite's date() is text, PostgreSQL's a date: both print as YYYY-MM-DD
                for when, task_type, credits in conn.execute(query):
                    spent[date.fromisoformat(str(when)), task_type] += int(credits)
        return [(when, task_type, n) for (when, task_type), n in sorted(spent.items())]
