"""Task admission: a new task takes an account's slot and credits, or a typed refusal.

One short write transaction of four statements admits a task:

1. `UPDATE accounts ... RETURNING`: reserve the credits and lock the account's row (on SQLite
   the transaction holds the database write lock from its start; on PostgreSQL with a per-user
   cap it first takes the user's advisory lock, so one user's creates on different accounts
   are counted one after the other);
2. count the account's tasks in flight, against `maxJobs` (and the user's, against the cap);
3. `INSERT` the task (a repeated Idempotency-Key fails here, on the unique index);
4. `UPDATE counters ... WHERE value < max`: the service-wide queue depth (store.queue), last,
   so the one row every admission touches is locked only until the commit. On PostgreSQL it
   goes with the COMMIT in one round trip (`Prepared.run_then_commit`), and a full queue makes
   it fail rather than change nothing: were the COMMIT sent after its result came back, the
   row would stay locked while the thread waited for the GIL to send it, and every other
   admission of every process would queue behind that wait (measured: most backends waiting
   on the row's lock while its holder sat "idle in transaction").

Any refusal raises and rolls the whole transaction back, so concurrent admissions in any
process never exceed `maxJobs`, the queue depth or the credits. Idempotency-Key repeats answer
with the first task; a flagged prompt's task is stored FAILED with a strike on the account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Integer,
    Row,
    String,
    TextualSelect,
    column,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import DataError, IntegrityError

from vidmorph import errors
from vidmorph.domain.clock import utcnow
from vidmorph.domain.ids import format_id
from vidmorph.domain.models import Account, Task
from vidmorph.domain.states import TaskStatus
from vidmorph.store.accounts import to_account
from vidmorph.store.db import USER_LOCK_SPACE, Database
from vidmorph.store.prepared import Statements, arg
from vidmorph.store.queue import QueueFigures, take_slot_or_fail_sql, take_slot_sql
from vidmorph.store.tables import IN_FLIGHT_SQL, accounts, moderation_events, tasks
from vidmorph.store.task_rows import IN_FLIGHT_VALUES, task_artifacts, task_values, to_task


class Admitted(NamedTuple):
    task: Task
    #: False when an Idempotency-Key repeat answered with the first task
    created: bool
    #: the account as the admission left it (credits reserved); None for a repeat
    account: Account | None = None


_TASK_COLUMNS = [c.name for c in tasks.c]
_who = (accounts.c.user_id == arg("p_user")) & (accounts.c.email == arg("p_email"))

#: the admission's statements, prepared once (store.prepared): this is the hottest write path
ADMISSION_SQL: dict[str, Callable[[], Executable]] = {
    "reserve": lambda: _reserve_sql(_who),
    # PostgreSQL with a per-user cap: the same, once this transaction holds the user's
    # advisory lock (an InitPlan, so taken before the account's row): creates on different
    # accounts of one user then count the user's tasks one after the other, each in its own
    # later statement, which sees what the one before it committed
    "reserve_as_user": lambda: _reserve_sql(_who & _user_lock()),
    "busy": lambda: (
        select(func.count())
        .where(tasks.c.user_id == arg("p_user"), tasks.c.email == arg("p_email"))
        .where(tasks.c.status.in_(IN_FLIGHT_VALUES))
    ),
    # with a per-user cap: the account's tasks in flight and the user's across its accounts,
    # in one read of the partial index ix_tasks_in_flight (at most the cap's entries)
    "busy_and_user": lambda: _busy_and_user_sql("tasks"),
    # SQLite's planner, without statistics, would walk the user's whole history in
    # ix_tasks_owner: named there
    "busy_and_user_sqlite": lambda: _busy_and_user_sql("tasks INDEXED BY ix_tasks_in_flight"),
    "insert": lambda: insert(tasks).values({c: arg(f"p_{c.name}", c.type) for c in tasks.c}),
    "take_slot": take_slot_sql,
    "take_slot_or_fail": take_slot_or_fail_sql,
}


def _reserve_sql(where: ColumnElement[bool]) -> Executable:
    return (
        update(accounts)
        .where(where)
        .values(credits_used=accounts.c.credits_used + arg("p_credits"))
        .returning(*accounts.c)
    )


def _user_lock() -> ColumnElement[bool]:
    """True, once this transaction holds the user's lock (PostgreSQL; Database.lock_user's)."""
    taken = select(func.pg_advisory_xact_lock(USER_LOCK_SPACE, arg("p_user", Integer()))).subquery()
    return select(true()).select_from(taken).scalar_subquery()


def _busy_and_user_sql(source: str) -> TextualSelect:
    # the predicate written out as the partial index has it: a bound IN list would not match
    return (
        text(
            "SELECT count(*) FILTER (WHERE email = :p_email) AS in_account, count(*) AS in_user"
            f" FROM {source} WHERE user_id = :p_user AND {IN_FLIGHT_SQL}"
        )
        .bindparams(arg("p_user", Integer()), arg("p_email", String()))
        .columns(column("in_account", Integer()), column("in_user", Integer()))
    )


#: the SQLSTATE of take_slot_or_fail's refusal (PostgreSQL's division_by_zero)
_DIVISION_BY_ZERO = "22012"


class TaskAdmission:
    db: Database
    queue: QueueFigures
    sql: Statements

    def admit(
        self,
        task: Task,
        *,
        max_jobs: int,
        max_queue_depth: int,
        idempotency: tuple[str, str] | None = None,
        throttle: bool = False,
        max_user_tasks: int = 0,
    ) -> Admitted:
        """Insert a PENDING task if the account has a free slot; with `throttle` (Runway's
        API), a THROTTLED one when it has none, which `promote_throttled` moves on later.

        `max_jobs` overrides the account's own when given (the request's maxJobs);
        `max_user_tasks` (0: none) bounds the user's tasks in flight across its accounts
        (QueueFull past it).
        Raises NotFound, AccountSuspended, AccountBusy (never with `throttle`), QueueFull,
        InsufficientCredits or Conflict (the Idempotency-Key was first used with another body).
        """
        limits = (max_jobs, max_queue_depth, max_user_tasks)
        work = self._work(task, limits, idempotency, throttle)
        try:
            admitted: Admitted = self.db.group.run(work)
        except (IntegrityError, errors.VidmorphError) as error:
            return self._refused(error, task, idempotency)
        return self._admitted(admitted)

    async def admit_async(
        self,
        task: Task,
        *,
        max_jobs: int,
        max_queue_depth: int,
        idempotency: tuple[str, str] | None = None,
        throttle: bool = False,
        max_user_tasks: int = 0,
    ) -> Admitted:
        """`admit` for a coroutine on SQLite, which waits for the commit without blocking its
        event loop (its reads after a refusal are local-file reads, as the polls' are)."""
        limits = (max_jobs, max_queue_depth, max_user_tasks)
        work = self._work(task, limits, idempotency, throttle)
        try:
            admitted: Admitted = await self.db.group.run_async(work)
        except (IntegrityError, errors.VidmorphError) as error:
            return self._refused(error, task, idempotency)
        return self._admitted(admitted)

    def _work(
        self,
        task: Task,
        limits: tuple[int, int, int],
        idempotency: tuple[str, str] | None,
        throttle: bool,
    ) -> Callable[[Connection], Admitted]:
        """The admission's write work, for GroupCommit to run in a transaction."""
        return lambda conn: self._admit_in(conn, task, *limits, idempotency, throttle)

    def _admitted(self, admitted: Admitted) -> Admitted:
        if admitted.task.status is TaskStatus.PENDING:
            new = admitted.task
            self.queue.admitted(new.params.priority, new.created_at, new.uuid)
        return admitted

    def _refused(
        self, error: Exception, task: Task, idempotency: tuple[str, str] | None
    ) -> Admitted:
        """What answers an admission that raised `error`, or `error` itself."""
        if isinstance(error, IntegrityError):
            # A repeated Idempotency-Key: the insert hit the unique index and the transaction
            # rolled back (credits and slot included). The first task answers.
            return Admitted(self._idempotent_winner(error, task.user_id, idempotency), False)
        # A repeat sent while its first was being admitted waits on the account's lock and
        # may then find the account busy with that very task: the first task answers.
        first = None if idempotency is None else self.find_idempotent(task.user_id, *idempotency)
        if first is None:
            raise error
        return Admitted(first, False)

    def _admit_in(
        self,
        conn: Connection,
        task: Task,
        max_jobs: int,
        max_queue_depth: int,
        max_user_tasks: int,
        idempotency: tuple[str, str] | None,
        throttle: bool,
    ) -> Admitted:
        """The four statements, in `conn`'s write transaction (on SQLite, shared with other
        admissions: store.group_commit); a refusal raises."""
        sql, who = self.sql, {"p_user": task.user_id, "p_email": task.email}
        reserve = "reserve_as_user" if max_user_tasks and not self.db.is_sqlite else "reserve"
        row = sql[reserve].one_or_none(conn, p_credits=task.credits, **who)
        if row is None:
            raise errors.NotFound(f"Account {task.email} not found.")
        if row.suspended:
            raise errors.AccountSuspended()
        if row.credits_used > row.num_plan_credits:
            raise errors.InsufficientCredits()
        if max_user_tasks:
            both = sql["busy_and_user_sqlite" if self.db.is_sqlite else "busy_and_user"]
            account_busy, user_busy = both.values_or_none(conn, **who) or (0, 0)
            if user_busy >= max_user_tasks:
                raise errors.QueueFull()
        else:
            account_busy = sql["busy"].scalar(conn, **who)
        if account_busy >= max_jobs:
            if not throttle:
                raise errors.AccountBusy(task.email, max_jobs, _running_list(conn, task))
            task = replace(task, status=TaskStatus.THROTTLED)
        values = dict.fromkeys(_TASK_COLUMNS)
        values.update(task_values(task))
        if idempotency is not None:
            values.update(idempotency_key=idempotency[0], request_hash=idempotency[1])
        sql["insert"].rowcount(conn, **{f"p_{k}": v for k, v in values.items()})
        if self.db.is_sqlite:  # the commit is GroupCommit's, shared with other admissions
            if not sql["take_slot"].rowcount(conn, p_max=max_queue_depth):
                raise errors.QueueFull()
        else:
            try:
                sql["take_slot_or_fail"].run_then_commit(conn, p_max=max_queue_depth)
            except DataError as error:
                if getattr(error.orig, "sqlstate", None) != _DIVISION_BY_ZERO:
                    raise
                raise errors.QueueFull() from None
        return Admitted(task, True, to_account(row))

    def add_moderated(
        self,
        task: Task,
        category: str,
        *,
        suspend_after: int,
        since: datetime,
        idempotency: tuple[str, str] | None = None,
    ) -> bool:
        """Store a task that FAILED moderation; True when this one suspends the account.

        With `idempotency`, a repeat of the same request stores nothing and adds no strike.
        """
        try:
            return self._add_moderated(task, category, suspend_after, since, idempotency)
        except IntegrityError as error:  # the same key at once on two accounts: see `admit`
            self._idempotent_winner(error, task.user_id, idempotency)
            return False

    def _add_moderated(
        self,
        task: Task,
        category: str,
        suspend_after: int,
        since: datetime,
        idempotency: tuple[str, str] | None,
    ) -> bool:
        with self.db.write() as conn:
            lock_account(conn, task.user_id, task.email)
            values = task_values(task)
            if idempotency is not None:
                if _by_idempotency(conn, task.user_id, *idempotency) is not None:
                    return False
                values.update(idempotency_key=idempotency[0], request_hash=idempotency[1])
            conn.execute(insert(tasks).values(**values))
            conn.execute(
                insert(moderation_events).values(
                    user_id=task.user_id, email=task.email, category=category, created_at=utcnow()
                )
            )
            strikes = conn.execute(
                select(func.count())
                .select_from(moderation_events)
                .where(moderation_events.c.user_id == task.user_id)
                .where(moderation_events.c.email == task.email)
                .where(moderation_events.c.created_at >= since)
            ).scalar_one()
            if strikes < suspend_after:
                return False
            conn.execute(
                update(accounts)
                .where(accounts.c.user_id == task.user_id, accounts.c.email == task.email)
                .values(suspended=True, updated_at=utcnow())
            )
            return True

    def _idempotent_winner(
        self, error: IntegrityError, user_id: int, idempotency: tuple[str, str] | None
    ) -> Task:
        """After a unique-index violation: the task that took the key first (Conflict for
        another body); re-raises the violation when no key explains it."""
        first = None if idempotency is None else self.find_idempotent(user_id, *idempotency)
        if first is None:
            raise error
        return first

    def find_idempotent(self, user_id: int, key: str, request_hash: str) -> Task | None:
        """The task first created with this Idempotency-Key; Conflict for another body."""
        with self.db.read() as conn:
            return _by_idempotency(conn, user_id, key, request_hash)


def lock_account(conn: Connection, user_id: int, email: str) -> Row[Any]:
    """The account's row, locked until `conn` commits (NotFound without one): what admission's
    other writers (moderated tasks, store.throttle's promotions) count under."""
    row = conn.execute(
        select(accounts)
        .where(accounts.c.user_id == user_id, accounts.c.email == email)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise errors.NotFound(f"Account {email} not found.")
    return row


def _by_idempotency(conn: Connection, user_id: int, key: str, request_hash: str) -> Task | None:
    row = conn.execute(
        select(tasks).where(tasks.c.user_id == user_id, tasks.c.idempotency_key == key)
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise errors.Conflict()
    return to_task(row, task_artifacts(conn, row.uuid))


def _running_list(conn: Connection, task: Task) -> list[dict[str, Any]]:
    """The account's tasks in flight, for the AccountBusy answer (a refusal, so off the hot
    path)."""
    rows = conn.execute(
        select(tasks.c.uuid, tasks.c.reply_url, tasks.c.reply_ref)
        .where(tasks.c.user_id == task.user_id, tasks.c.email == task.email)
        .where(tasks.c.status.in_(IN_FLIGHT_VALUES))
        .order_by(tasks.c.created_at)
    ).all()
    return [
        {
            "email": task.email,
            "taskId": format_id(task.user_id, task.email, "task", r.uuid),
            "id": r.uuid,
            "replyUrl": r.reply_url,
            "replyRef": r.reply_ref,
        }
        for r in rows
    ]
