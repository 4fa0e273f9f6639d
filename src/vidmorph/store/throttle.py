"""THROTTLED tasks (Runway's API): a task admitted past its account's maxJobs waits THROTTLED
and moves on to PENDING, oldest first, as the account's slots free up."""

from __future__ import annotations

from sqlalchemy import func, select, update

from vidmorph.domain.clock import utcnow
from vidmorph.domain.states import TAKES_A_SLOT, TaskStatus
from vidmorph.store.admission import lock_account
from vidmorph.store.db import Database
from vidmorph.store.queue import QueueFigures
from vidmorph.store.tables import tasks

_SLOT_VALUES = [s.value for s in TAKES_A_SLOT]


class TaskThrottle:
    db: Database
    queue: QueueFigures

    def promote_throttled(self, user_id: int, email: str) -> list[str]:
        """THROTTLED -> PENDING, oldest first, for as many tasks as the account has free
        maxJobs slots; the uuids moved. Under the account's lock, as admission counts; a
        read first, so an account with none waiting (useapi's only) costs no write."""
        mine = (tasks.c.user_id == user_id) & (tasks.c.email == email)
        throttled = tasks.c.status == TaskStatus.THROTTLED.value
        with self.db.read() as conn:
            if conn.execute(select(tasks.c.uuid).where(mine, throttled).limit(1)).first() is None:
                return []
        with self.db.write() as conn:
            account = lock_account(conn, user_id, email)
            active = conn.execute(
                select(func.count()).where(mine, tasks.c.status.in_(_SLOT_VALUES))
            ).scalar_one()
            free = account.max_jobs - active
            if free <= 0:
                return []
            waiting = conn.execute(
                select(tasks.c.uuid)
                .where(mine, tasks.c.status == TaskStatus.THROTTLED.value)
                .order_by(tasks.c.created_at, tasks.c.uuid)
                .limit(free)
            ).scalars()
            now, moved = utcnow(), []
            for uuid in list(waiting):
                done = conn.execute(
                    update(tasks)
                    .where(tasks.c.uuid == uuid, tasks.c.status == TaskStatus.THROTTLED.value)
                    .values(status=TaskStatus.PENDING.value, updated_at=now)
                )
                if done.rowcount == 1:
                    moved.append(uuid)
        if moved:
            self.queue.invalidate()
        return moved

    def throttled_accounts(self) -> list[tuple[int, str]]:
        """(user, email) of every account with a THROTTLED task."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(tasks.c.user_id, tasks.c.email)
                .where(tasks.c.status == TaskStatus.THROTTLED.value)
                .distinct()
            ).all()
        return [(r.user_id, r.email) for r in rows]
