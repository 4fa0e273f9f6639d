"""Answers to a task's polls: useapi's `GET /tasks/{taskId}` and Runway's `GET /v1/tasks/{id}`.

Each poll reads the task's joined row (task, source asset, account: one statement), so it
never answers from stale data. The encoded answer made from a row is reused while the row is
unchanged, for about a second (service.view_cache), so a steady poll converts, builds and
encodes nothing. On PostgreSQL the read is awaited in the event loop, batched with the other
polls of the same turn (store.async_read, store.batched), and a poll that must build its
answer does that in a thread, as the build may read more (artifacts, the line, the ETA).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from vidmorph.domain.models import Account, Asset, Task, User
from vidmorph.domain.states import TaskStatus
from vidmorph.service.context import AppContext

#: a surface's view of a task, from the task, its source and its account
Render = Callable[[AppContext, Task, Asset | None, Account | None], dict[str, Any]]


def answer(
    ctx: AppContext, user: User, uuid: str, render: Render, email: str | None = None
) -> bytes | None:
    """The user's task `uuid` as `render` shows it, encoded; None when it is not theirs (or,
    given the `email` a useapi taskId names, not that account's)."""
    row = ctx.tasks.view_row(uuid, user.id)
    if row is None or (email is not None and ctx.tasks.email_of(row) != email):
        return None
    body = ctx.views.get((render, user.id, uuid), row, ctx.tasks.line)
    return _build(ctx, user, uuid, row, render) if body is None else body


async def answer_async(
    ctx: AppContext, user: User, uuid: str, render: Render, email: str | None = None
) -> bytes | None:
    """`answer` for a handler in the event loop: on SQLite read there as it is (a local file
    read, tens of microseconds), on PostgreSQL awaited on the async pool."""
    if ctx.db.is_sqlite:
        return answer(ctx, user, uuid, render, email)
    if ctx.db.async_reads is None or not ctx.db.async_reads.usable():
        return await anyio.to_thread.run_sync(answer, ctx, user, uuid, render, email)
    row = await ctx.tasks.view_row_async(uuid, user.id)
    if row is None or (email is not None and ctx.tasks.email_of(row) != email):
        return None
    key = (render, user.id, uuid)
    # The line as it stands, without a read on the spot (the event loop may not wait on one).
    body = ctx.views.get(key, row, ctx.tasks.queue.peek)
    if body is not None:
        return body
    found = row

    async def build() -> bytes:
        return await anyio.to_thread.run_sync(_build, ctx, user, uuid, found, render)

    return await ctx.views.build_once(key, found, build)


def _build(ctx: AppContext, user: User, uuid: str, row: tuple[Any, ...], render: Render) -> bytes:
    line = ctx.tasks.line()  # before the build: a snapshot replaced meanwhile misses next time
    task, source, account = ctx.tasks.view_of(row)
    body = encode(render(ctx, task, source, account))
    pending = task.status is TaskStatus.PENDING
    ctx.views.put((render, user.id, uuid), row, line if pending else None, body)
    return body


def encode(content: Any) -> bytes:
    """JSON as the API's responses write it (Starlette's JSONResponse's own settings)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()
