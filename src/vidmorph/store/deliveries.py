"""DeliveryStore: replyUrl callbacks waiting to be sent, and what became of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, insert, select, tuple_, update

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Delivery
from vidmorph.store.db import Database
from vidmorph.store.tables import deliveries

#: what concurrent sends are bounded by: (user id, the receiver as target_of gives it)
Slot = tuple[int, str]


def target_of(url: str) -> str:
    """The receiver a URL reaches, as scheme://host:port."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"[:300]


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
        """Queue one callback. A task has one terminal delivery at most: a second one (a lost-
        callback sweep racing the worker's own, across machines whose clocks differ) returns the
        first one's id and queues nothing."""
        now = utcnow()
        with self.db.write() as conn:
            if terminal:
                self.db.lock_key(conn, f"terminal-delivery:{task_uuid}")
                first = conn.execute(
                    select(deliveries.c.id)
                    .where(deliveries.c.task_uuid == task_uuid, deliveries.c.terminal.is_(True))
                    .limit(1)
                ).scalar_one_or_none()
                if first is not None:
                    return int(first)
            result = conn.execute(
                insert(deliveries).values(
                    task_uuid=task_uuid,
                    user_id=user_id,
                    url=url,
                    target=target_of(url),
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

    def claim_due(
        self,
        limit: int,
        hold_s: float,
        *,
        per_target: int | None = None,
        per_user: int | None = None,
        in_flight: Mapping[Slot, int] | None = None,
    ) -> list[Delivery]:
        """Up to `limit` due deliveries, each held for `hold_s` so that no other sender, in
        this process or another, picks it up meanwhile. With the caller's sends `in_flight`
        counted in (per user and target), at most `per_target` go to one user's receiver and
        `per_user` to all of one user's: a slow receiver holds its owner's slots only, whoever
        else's receivers share its host.

        The earliest due go first (a delivery waiting for its retry does not jump a newer
        one's first try), and only a task's oldest pending delivery is due: while an earlier
        one is being sent (held by any process) or waits for its retry, the later ones wait
        too, so a receiver gets a task's callbacks one at a time and in order whichever
        processes send them."""
        slots = Counter[Slot](in_flight or {})
        users = Counter[int]()
        for (user_id, _), n in slots.items():
            users[user_id] += n
        full_slots = [s for s, n in slots.items() if per_target is not None and n >= per_target]
        full_users = [u for u, n in users.items() if per_user is not None and n >= per_user]
        now = utcnow()
        earlier = deliveries.alias("earlier")
        earlier_pending = (
            select(earlier.c.id)
            .where(earlier.c.task_uuid == deliveries.c.task_uuid)
            .where(earlier.c.state == "pending", earlier.c.id < deliveries.c.id)
        )
        query = (
            select(deliveries)
            .where(deliveries.c.state == "pending", deliveries.c.next_attempt_at <= now)
            .where(~earlier_pending.exists())
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit * 4)
            .with_for_update(skip_locked=True)
        )
        if full_users:
            query = query.where(deliveries.c.user_id.not_in(full_users))
        if full_slots:
            query = query.where(
                deliveries.c.target.is_(None)
                | tuple_(deliveries.c.user_id, deliveries.c.target).not_in(full_slots)
            )
        with self.db.write() as conn:
            chosen = []
            for row in conn.execute(query).all():
                slot = (row.user_id, row.target or target_of(row.url))
                if per_target is not None and slots[slot] >= per_target:
                    continue
                if per_user is not None and users[row.user_id] >= per_user:
                    continue
                chosen.append(row)
                slots[slot] += 1
                users[row.user_id] += 1
                if len(chosen) == limit:
                    break
            if chosen:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([r.id for r in chosen]))
                    .values(next_attempt_at=now + timedelta(seconds=hold_s))
                )
        return [to_delivery(r) for r in chosen]

    def extend_hold(self, holds: Collection[tuple[int, int]], hold_s: float) -> None:
        """Hold deliveries that are still being sent for another `hold_s`: a send may outlast
        its first hold (a receiver answering a byte at a time never trips the read timeout),
        and the hold must not lapse while it runs, or another process sends it again. Each
        hold is (delivery id, attempts when claimed); one whose outcome was written since (it
        counted an attempt) is left alone, so a retry time is never overwritten."""
        if not holds:
            return
        with self.db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(tuple_(deliveries.c.id, deliveries.c.attempts).in_(list(holds)))
                .where(deliveries.c.state == "pending")
                .values(next_attempt_at=utcnow() + timedelta(seconds=hold_s))
            )

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
