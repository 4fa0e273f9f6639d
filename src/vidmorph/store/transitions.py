"""Every task status change: one conditional UPDATE that says whether it won.

Duplicate deliveries, restarts and races between a cancel and a finishing worker all become
no-ops here: the loser's UPDATE matches no row. Credits reserved at admission are released in
the same transaction that moves a task to FAILED or CANCELLED, and a task's place in the
service-wide in-flight count in the one that moves it to any terminal status.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Asset, Task
from vidmorph.domain.states import RELEASES_CREDITS, TERMINAL, TaskStatus, sources_of
from vidmorph.store.assets import insert_asset
from vidmorph.store.db import Database
from vidmorph.store.queue import QueueFigures, release_slot
from vidmorph.store.tables import accounts, tasks

log = logging.getLogger(__name__)


def charge(conn: Connection, user_id: int, email: str, credits: int) -> None:
    """Reserve (positive) or release (negative) credits on the account."""
    if credits:
        conn.execute(
            update(accounts)
            .where(accounts.c.user_id == user_id, accounts.c.email == email)
            .values(credits_used=accounts.c.credits_used + credits)
        )


class TaskTransitions:
    db: Database
    queue: QueueFigures

    def get(self, uuid: str, user_id: int | None = None) -> Task | None:
        raise NotImplementedError

    def transition(
        self,
        uuid: str,
        to: TaskStatus,
        *,
        from_: set[TaskStatus] | None = None,
        owner: str | None = None,
        **values: Any,
    ) -> bool:
        """Move the task to `to` if it is in `from_` (default: every allowed source)."""
        with self.db.write() as conn:
            return self._transition(conn, uuid, to, from_=from_, owner=owner, **values)

    def _transition(
        self,
        conn: Connection,
        uuid: str,
        to: TaskStatus,
        *,
        from_: set[TaskStatus] | None = None,
        owner: str | None = None,
        **values: Any,
    ) -> bool:
        allowed = sources_of(to) if from_ is None else sources_of(to) & from_
        now = utcnow()
        if to in TERMINAL:
            values.setdefault("finished_at", now)
            values.update(lease_owner=None, lease_expires_at=None)
        query = (
            update(tasks)
            .where(tasks.c.uuid == uuid, tasks.c.status.in_([s.value for s in allowed]))
            .values(status=to.value, updated_at=now, **values)
        )
        if owner is not None:
            query = query.where(tasks.c.lease_owner == owner)
        won = conn.execute(query).rowcount == 1
        if won:
            log.info("task %s -> %s", uuid, to.value)
            self.queue.invalidate()
            if to in RELEASES_CREDITS:
                row = conn.execute(
                    select(tasks.c.user_id, tasks.c.email, tasks.c.credits).where(
                        tasks.c.uuid == uuid
                    )
                ).one()
                charge(conn, row.user_id, row.email, -row.credits)
            if to in TERMINAL:
                # Every source of a terminal status is in flight (domain.states.ALLOWED). The
                # counter row is locked last, after any account row, as admission does.
                release_slot(conn)
        return won

    def claim(self, uuid: str, owner: str, lease_s: float) -> Task | None:
        """PENDING -> RUNNING under a lease held by `owner`; None when someone else won."""
        now = utcnow()
        with self.db.write() as conn:
            won = self._transition(
                conn,
                uuid,
                TaskStatus.RUNNING,
                from_={TaskStatus.PENDING},
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=tasks.c.attempts + 1,
                started_at=now,
                progress_ratio=0.0,
            )
        return self.get(uuid) if won else None

    def heartbeat(self, uuid: str, owner: str, lease_s: float) -> bool:
        """Extend the lease; False when the task is no longer this worker's to run."""
        with self.db.write() as conn:
            result = conn.execute(
                update(tasks)
                .where(tasks.c.uuid == uuid, tasks.c.status == TaskStatus.RUNNING.value)
                .where(tasks.c.lease_owner == owner)
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            )
        return result.rowcount == 1

    def set_progress(self, uuid: str, owner: str, ratio: float, text: str | None) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                update(tasks)
                .where(tasks.c.uuid == uuid, tasks.c.status == TaskStatus.RUNNING.value)
                .where(tasks.c.lease_owner == owner)
                .values(progress_ratio=ratio, progress_text=text, updated_at=utcnow())
            )
        return result.rowcount == 1

    def is_running_for(self, uuid: str, owner: str) -> bool:
        with self.db.read() as conn:
            row = conn.execute(
                select(tasks.c.status, tasks.c.lease_owner).where(tasks.c.uuid == uuid)
            ).one_or_none()
        return (
            row is not None
            and row.status == TaskStatus.RUNNING.value
            and (row.lease_owner == owner)
        )

    def succeed(self, uuid: str, owner: str, artifacts: list[Asset]) -> bool:
        """RUNNING -> SUCCEEDED with its output assets, atomically; False if it lost a race."""
        with self.db.write() as conn:
            won = self._transition(
                conn,
                uuid,
                TaskStatus.SUCCEEDED,
                owner=owner,
                progress_ratio=1.0,
                progress_text=None,
            )
            if won:
                for asset in artifacts:
                    insert_asset(conn, asset)
        return won

    def lapsed(self, now: datetime | None = None) -> list[str]:
        """RUNNING tasks whose worker stopped renewing its lease (crash, kill, restart)."""
        query = select(tasks.c.uuid).where(
            tasks.c.status == TaskStatus.RUNNING.value,
            tasks.c.lease_expires_at < (now or utcnow()),
        )
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    def requeue_lapsed(
        self, uuid: str, max_attempts: int, error: dict[str, Any]
    ) -> TaskStatus | None:
        """Back to PENDING for another run, or FAILED once `max_attempts` runs lapsed."""
        now = utcnow()
        with self.db.write() as conn:
            row = conn.execute(
                select(tasks.c.attempts)
                .where(tasks.c.uuid == uuid, tasks.c.status == TaskStatus.RUNNING.value)
                .where(tasks.c.lease_expires_at < now)
            ).one_or_none()
            if row is None:
                return None
            if row.attempts >= max_attempts:
                self._transition(conn, uuid, TaskStatus.FAILED, error=error)
                return TaskStatus.FAILED
            self._transition(
                conn,
                uuid,
                TaskStatus.PENDING,
                from_={TaskStatus.RUNNING},
                lease_owner=None,
                lease_expires_at=None,
                progress_ratio=None,
                progress_text=None,
            )
            return TaskStatus.PENDING
