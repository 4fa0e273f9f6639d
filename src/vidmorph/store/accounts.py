"""AccountStore: capacity pools (maxJobs, plan, credits, default replyUrl, suspension)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from vidmorph import errors
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Account, Asset, Task
from vidmorph.domain.states import IN_FLIGHT
from vidmorph.store.db import Database
from vidmorph.store.tables import (
    account_grants,
    accounts,
    assets,
    moderation_events,
    tasks,
)
from vidmorph.store.task_rows import delete_tasks, to_asset, to_task
from vidmorph.store.usage import UsageStore, spent_total

#: rows per statement when an account's tasks go with it (well inside SQLite's parameter cap)
_CHUNK = 500


def _chunks(items: list[Task]) -> Iterator[list[Task]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def to_account(row: Any) -> Account:
    """An account from its row (or any object with its columns as attributes)."""
    return Account(
        user_id=row.user_id,
        email=row.email,
        max_jobs=row.max_jobs,
        plan=row.plan,
        num_plan_credits=row.num_plan_credits,
        credits_used=row.credits_used,
        reply_url=row.reply_url,
        suspended=row.suspended,
        has_password=row.password_hash is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


#: a new account needs its slot count
MAX_JOBS_REQUIRED = "maxJobs is required (1..10, we recommend 5)."
SUSPENDED_USER = (
    "An account of yours has been suspended: no new account can be made until an operator lifts it."
)


def _has_suspended(conn: Connection, user_id: int) -> bool:
    query = select(accounts.c.email).where(
        accounts.c.user_id == user_id, accounts.c.suspended.is_(True)
    )
    return conn.execute(query.limit(1)).first() is not None


def _check_room(conn: Connection, user_id: int, max_accounts: int) -> None:
    query = select(func.count()).select_from(accounts).where(accounts.c.user_id == user_id)
    if conn.execute(query).scalar_one() >= max_accounts:
        raise errors.BadRequest(
            f"You have {max_accounts} accounts, as many as this server allows; delete one first."
        )


def _granted(conn: Connection, user_id: int, email: str) -> dict[str, Any]:
    row = conn.execute(
        select(account_grants.c.plan, account_grants.c.num_plan_credits).where(
            account_grants.c.user_id == user_id, account_grants.c.email == email
        )
    ).first()
    if row is None:
        return {}
    return {k: v for k, v in row._asdict().items() if v is not None}


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(
        self,
        user_id: int,
        email: str,
        defaults: dict[str, Any] | None = None,
        max_accounts: int | None = None,
        by_tenant: bool = True,
        **values: Any,
    ) -> Account:
        """Create the account (with `defaults` under the given fields; `max_jobs` must be
        among them; refused past the user's `max_accounts`), or update the given fields of an
        existing one; `by_tenant`, not while the user has a suspended account (the operator
        may). The existence check is the transaction's own, so an account deleted meanwhile
        is created, not half-inserted; creates of new accounts of one user take turns (so
        racing ones cannot all pass `max_accounts`). One made again under an email it had
        before starts with the credits its tasks spent then."""
        now = utcnow()
        key = (accounts.c.user_id == user_id) & (accounts.c.email == email)
        with self.db.write() as conn:
            found = conn.execute(select(accounts.c.suspended).where(key).with_for_update()).first()
            if by_tenant and found is not None and found.suspended:
                # compat(useapi §2): a suspended account's POST is a 401 with this message
                raise errors.AccountSuspended()
            created = False
            if found is None and values.get("max_jobs") is None:
                raise errors.BadRequest(MAX_JOBS_REQUIRED)
            if found is None:
                # the user's accounts counted below: racing creates take turns
                self.db.lock_user(conn, user_id)
            if by_tenant and found is None and _has_suspended(conn, user_id):
                # a new email must not shed a suspension only an operator may lift
                raise errors.AccountSuspended(SUSPENDED_USER)
            if found is None and max_accounts is not None:
                _check_room(conn, user_id, max_accounts)
            if found is None:
                # what the operator granted this email before (it was deleted since) stands
                fields = {**(defaults or {}), **_granted(conn, user_id, email), **values}
                created = self._insert(conn, user_id, email, fields)
            if not created and values:
                conn.execute(update(accounts).where(key).values(updated_at=now, **values))
            if not by_tenant:
                self._grant(conn, user_id, email, values)
            row = conn.execute(select(accounts).where(key)).one()
        return to_account(row)

    def _insert(self, conn: Connection, user_id: int, email: str, fields: dict[str, Any]) -> bool:
        """Whether this INSERT made the account. Two processes may create the same account at
        once (the default set-up): one insert wins, the other becomes an update of the fields
        it was given. RETURNING, not rowcount: SQLAlchemy reports no rowcount for an INSERT."""
        now = utcnow()
        inserted = conn.execute(
            self.db.insert_ignore(accounts)
            .values(
                user_id=user_id,
                email=email,
                credits_used=spent_total(conn, user_id, email),
                suspended=False,
                created_at=now,
                updated_at=now,
                **fields,
            )
            .returning(accounts.c.email)
        )
        return inserted.first() is not None

    def _grant(self, conn: Connection, user_id: int, email: str, values: dict[str, Any]) -> None:
        """Keep what the operator set of the plan and credits, for the account's lifetime and
        any later one of the same email."""
        granted = {k: values[k] for k in ("plan", "num_plan_credits") if k in values}
        if not granted:
            return
        key = {"user_id": user_id, "email": email}
        conn.execute(self.db.insert_ignore(account_grants).values(**key))
        conn.execute(
            update(account_grants)
            .where(account_grants.c.user_id == user_id, account_grants.c.email == email)
            .values(**granted)
        )

    def granted(self, user_id: int, email: str) -> dict[str, Any]:
        """The plan and credits the operator set for this email, if ever (column names)."""
        with self.db.read() as conn:
            return _granted(conn, user_id, email)

    def get(self, user_id: int, email: str) -> Account | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(accounts).where(accounts.c.user_id == user_id, accounts.c.email == email)
            ).one_or_none()
        return None if row is None else to_account(row)

    def all_of(self, user_id: int) -> list[Account]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(accounts).where(accounts.c.user_id == user_id).order_by(accounts.c.email)
            ).all()
        return [to_account(r) for r in rows]

    def delete(self, user_id: int, email: str) -> list[Asset] | None:
        """Remove the account with everything made on it: its finished tasks (their spending
        folded into the usage figures, so an account made again under the email starts from
        it), its assets (uploads and outputs) and its callbacks still due. Returns the assets
        removed, so the caller can delete their files; None when there was no such account.
        Conflict while it has PENDING or RUNNING tasks (their reserved credits and slots belong
        to it), AccountSuspended while it is suspended (deleting and making it again would shed
        the suspension only an operator may lift; its moderation strikes are kept for the
        same reason)."""
        key = (accounts.c.user_id == user_id) & (accounts.c.email == email)
        usage = UsageStore(self.db)
        with self.db.write() as conn:
            # The row lock first: an admission that holds it has its task inserted but not yet
            # committed, so counting before it commits would miss that task.
            found = conn.execute(select(accounts.c.suspended).where(key).with_for_update()).first()
            if found is None:
                return None
            if found.suspended:
                raise errors.AccountSuspended()
            busy = conn.execute(
                select(func.count())
                .select_from(tasks)
                .where(tasks.c.user_id == user_id, tasks.c.email == email)
                .where(tasks.c.status.in_([s.value for s in IN_FLIGHT]))
            ).scalar_one()
            if busy:
                raise errors.Conflict(
                    f"Account {email} has {busy} tasks pending or running; cancel them first."
                )
            # every asset of the account, its tasks' outputs too, returned for their files
            removed = conn.execute(
                delete(assets)
                .where(assets.c.user_id == user_id, assets.c.email == email)
                .returning(*assets.c)
            ).all()
            made = conn.execute(
                select(tasks).where(tasks.c.user_id == user_id, tasks.c.email == email)
            ).all()
            for chunk in _chunks([to_task(r) for r in made]):
                delete_tasks(conn, usage, chunk, "the account was deleted")
            conn.execute(delete(accounts).where(key))
        return [to_asset(r) for r in removed]

    def set_suspended(self, user_id: int, email: str, suspended: bool) -> bool:
        """Suspend or lift; lifting also forgets the strikes that led to it, so the account
        starts again from none instead of one refusal away from the next suspension."""
        with self.db.write() as conn:
            result = conn.execute(
                update(accounts)
                .where(accounts.c.user_id == user_id, accounts.c.email == email)
                .values(suspended=suspended, updated_at=utcnow())
            )
            if result.rowcount and not suspended:
                conn.execute(
                    delete(moderation_events).where(
                        moderation_events.c.user_id == user_id, moderation_events.c.email == email
                    )
                )
        return result.rowcount > 0
