"""UserStore: users, their webhook secrets and their hashed API tokens."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import delete, func, select
from sqlalchemy.sql.dml import Insert

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import User
from vidmorph.store.db import Database
from vidmorph.store.tables import tokens, users


def token_hash(token: str) -> str:
    # Tokens carry 160+ random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, webhook_secret: str, user_id: int | None = None) -> User:
        """A new user; for a fixed `user_id` that another process created first (the default
        user when several start at once), that user, unchanged. Without `user_id`, always a
        user of the caller's own: when another process takes the next number first, the next
        free one (never the other caller's user, which would share a tenant)."""
        with self.db.write() as conn:
            if user_id is not None:
                conn.execute(self._insert(user_id, webhook_secret))
                row = conn.execute(select(users).where(users.c.id == user_id)).one()
                return User(row.id, row.webhook_secret)
            while True:
                # READ COMMITTED (PostgreSQL): each statement sees the numbers others have
                # committed meanwhile; a racing uncommitted insert makes ours wait, then skip.
                new_id = (
                    int(conn.execute(select(func.coalesce(func.max(users.c.id), 0))).scalar_one())
                    + 1
                )
                # RETURNING, not rowcount: SQLAlchemy reports no rowcount for an INSERT.
                made = conn.execute(self._insert(new_id, webhook_secret).returning(users.c.id))
                if made.first() is not None:
                    return User(new_id, webhook_secret)

    def _insert(self, user_id: int, webhook_secret: str) -> Insert:
        return self.db.insert_ignore(users).values(
            id=user_id, webhook_secret=webhook_secret, created_at=utcnow()
        )

    def get(self, user_id: int) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
        return None if row is None else User(row.id, row.webhook_secret)

    def add_token(self, user_id: int, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                self.db.insert_ignore(tokens).values(
                    user_id=user_id, token_hash=token_hash(token), created_at=utcnow()
                )
            )

    def revoke_token(self, token: str) -> int | None:
        """Remove `token`; the user it was for, None when no such token was stored."""
        with self.db.write() as conn:
            row = conn.execute(
                delete(tokens)
                .where(tokens.c.token_hash == token_hash(token))
                .returning(tokens.c.user_id)
            ).first()
        return None if row is None else int(row.user_id)

    def verify_token(self, user_id: int, token: str) -> bool:
        """True when `token` is one of the user's; each stored hash compared in constant time."""
        wanted = token_hash(token)
        with self.db.read() as conn:
            hashes = conn.execute(
                select(tokens.c.token_hash).where(tokens.c.user_id == user_id)
            ).scalars()
            found = False
            for stored in hashes:
                found |= hmac.compare_digest(stored, wanted)
        return found
