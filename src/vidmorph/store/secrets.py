"""SecretStore: secrets every process of a fleet shares, kept in the database.

A secret is made by whichever process asks first: it inserts its random candidate with
INSERT ... ON CONFLICT DO NOTHING and then reads back what won, so every process, on any machine,
gets the same bytes and none can ever read a half-written or empty value.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select

from vidmorph.domain.clock import utcnow
from vidmorph.store.db import Database
from vidmorph.store.tables import shared_secrets

URL_SIGNING_KEY = "url-signing-key"


class SecretStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_or_create(self, name: str, candidate: bytes | None = None, size: int = 32) -> bytes:
        """The secret called `name`; `candidate` (or fresh random bytes) if none exists yet."""
        value = candidate or secrets.token_bytes(size)
        if not value:
            raise ValueError("a shared secret may not be empty")
        with self.db.write() as conn:
            conn.execute(
                self.db.insert_ignore(shared_secrets).values(
                    name=name, value=value, created_at=utcnow()
                )
            )
            stored: bytes = conn.execute(
                select(shared_secrets.c.value).where(shared_secrets.c.name == name)
            ).scalar_one()
        if not stored:
            raise RuntimeError(f"shared secret {name} is empty in the database")
        return bytes(stored)
