"""DeliveryStore: replyUrl callbacks waiting to be sent, and what became of them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Delivery
from vidmorph.store.db import Database
from vidmorph.store.tables import deliveries


def to_delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        task_uuid=row.task_uuid,
        user_id=row.user_id,
        url=row.url,
        body=row.body,
        terminal=row.terminal,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        expires_at=row.expires_at,
    )


class DeliveryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self, task_uuid: str, user_id: int, url: str, body: bytes, *, terminal: bool, ttl_s: float
    ) -> int:
        now = utcnow()
        with self.db.write() as conn:
            result = conn.execute(
                insert(deliveries).values(
                    task_uuid=task_uuid,
                    user_id=user_id,
                    url=url,
                    body=body,
                    terminal=terminal,
                    attempts=0,
                    next_attempt_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                    state="pending",
                    created_at=now,
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def claim_due(self, limit: int, hold_s: float) -> list[Delivery]:
        """Due deliveries, each held for `hold_s` so no other sender picks it up meanwhile."""
        now = utcnow()
        with self.db.write() as conn:
            rows = conn.execute(
                select(deliveries)
                .where(deliveries.c.state == "pending", deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + timedelta(seconds=hold_s))
                )
        return [to_delivery(r) for r in rows]

    def delivered(self, delivery_id: int) -> None:
        self._finish(delivery_id, "delivered", None)

    def dropped(self, delivery_id: int, error: str) -> None:
        self._finish(delivery_id, "dropped", error)

    def retry_at(self, delivery_id: int, when: datetime, error: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(attempts=deliveries.c.attempts + 1, next_attempt_at=when, last_error=error)
            )

    def _finish(self, delivery_id: int, state: str, error: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(state=state, attempts=deliveries.c.attempts + 1, last_error=error)
            )

    def of_task(self, task_uuid: str) -> list[dict[str, Any]]:
        """Every delivery of a task with its state, oldest first (for operators and tests)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.terminal,
                    deliveries.c.state,
                    deliveries.c.attempts,
                    deliveries.c.last_error,
                )
                .where(deliveries.c.task_uuid == task_uuid)
                .order_by(deliveries.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]
