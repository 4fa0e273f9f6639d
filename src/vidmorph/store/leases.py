"""LeaseStore: named leases that at most one process of the fleet holds at any moment.

The recovery sweeper runs only in the process holding the `sweeper` lease, so the lapsed-lease
sweep, the re-dispatch of PENDING tasks and the lost-callback sweep run once across the fleet,
not once per process. Taking or renewing is one conditional UPDATE: it wins when the lease is
free, lapsed or already ours. Holders renew well inside the lease, so clock skew between
machines smaller than the lease does not let two lead at once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update

from vidmorph.domain.clock import utcnow
from vidmorph.store.db import Database
from vidmorph.store.tables import leases


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew lease `name` for `ttl_s`; True when `owner` holds it now."""
        now = utcnow()
        expires = now + timedelta(seconds=ttl_s)
        with self.db.write() as conn:
            conn.execute(
                self.db.insert_ignore(leases).values(
                    name=name, owner=owner, expires_at=now - timedelta(seconds=1)
                )
            )
            won = conn.execute(
                update(leases)
                .where(leases.c.name == name)
                .where(or_(leases.c.owner == owner, leases.c.expires_at < now))
                .values(owner=owner, expires_at=expires)
            ).rowcount
        return won == 1

    def release(self, name: str, owner: str) -> None:
        """Give the lease up (a clean shutdown), so another process takes over at once."""
        with self.db.write() as conn:
            conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.owner == owner)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
