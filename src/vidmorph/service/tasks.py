"""Task queries and control: get, list, cancel or delete, and the scheduler's in-flight view."""

from __future__ import annotations

import json
from typing import Any

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.models import Account, Asset, Task, User
from vidmorph.domain.states import IN_FLIGHT, TaskStatus
from vidmorph.service import accounts, notify, polls, runway
from vidmorph.service import assets as asset_service
from vidmorph.service.context import AppContext
from vidmorph.service.views import task_view


def get(ctx: AppContext, user: User, task_id: str) -> Task:
    parsed = ids.parse_own_id(task_id, "task", user.id)
    task = None if parsed is None else ctx.tasks.get(parsed.uuid, user.id)
    if task is None or parsed is None or task.email != parsed.email:  # the id names its account
        raise errors.NotFound()
    return task


def view(ctx: AppContext, user: User, task_id: str) -> dict[str, Any]:
    """The task object `view_json` encodes (task events compare and send it)."""
    result: dict[str, Any] = json.loads(view_json(ctx, user, task_id))
    return result


def view_json(ctx: AppContext, user: User, task_id: str) -> bytes:
    """GET /tasks/{taskId}, encoded: one read of the task with its source and account (and of
    its artifacts once it SUCCEEDED), the answer reused while they are unchanged
    (service.polls), its place in line from the line snapshot."""
    parsed = _own_id(user, task_id)
    body = polls.answer(ctx, user, parsed.uuid, _useapi_view, parsed.email)
    if body is None:
        raise errors.NotFound()
    return body


async def view_json_async(ctx: AppContext, user: User, task_id: str) -> bytes:
    """`view_json` for a handler in the event loop (service.polls.answer_async)."""
    parsed = _own_id(user, task_id)
    body = await polls.answer_async(ctx, user, parsed.uuid, _useapi_view, parsed.email)
    if body is None:
        raise errors.NotFound()
    return body


def _useapi_view(
    ctx: AppContext, task: Task, source: Asset | None, account: Account | None
) -> dict[str, Any]:
    return task_view(ctx, task, source, account, looked_up=True)


def _own_id(user: User, task_id: str) -> ids.CompositeId:
    parsed = ids.parse_own_id(task_id, "task", user.id)
    if parsed is None:
        raise errors.NotFound()
    return parsed


def page(
    ctx: AppContext,
    user: User,
    email: str | None,
    statuses: list[TaskStatus],
    offset: int,
    limit: int,
) -> list[Task]:
    # As GET /assets/ and /features/ (useapi §1): the named account (404 when unknown), else
    # the only one; with several, `email` is required (400).
    account = accounts.resolve_account(ctx, user, email)
    return ctx.tasks.page(user.id, account.email, statuses, offset, limit)


def cancel_or_delete(ctx: AppContext, user: User, task_id: str) -> None:
    """Cancel a PENDING or RUNNING task; delete a finished one with its files."""
    task = get(ctx, user, task_id)
    if task.status in IN_FLIGHT:
        if not _cancel(ctx, task):
            # It finished between our read and the UPDATE: delete it like a finished one.
            cancel_or_delete(ctx, user, task_id)
        return
    deleted = ctx.tasks.delete_finished(user.id, task.uuid)
    if deleted is None:  # a DELETE racing this one removed it first: it is gone
        raise errors.NotFound()
    for asset in deleted.artifacts:
        asset_service.delete_files(ctx, asset)


def _cancel(ctx: AppContext, task: Task) -> bool:
    # A RUNNING task's engine sees the new status at its next frame batch and stops.
    if not ctx.tasks.transition(task.uuid, TaskStatus.CANCELLED, from_=set(IN_FLIGHT)):
        return False
    notify.task_changed(ctx, task)
    runway.release_throttled(ctx, task.user_id, task.email)  # its slot is free
    return True


def scheduler(ctx: AppContext, user: User, email: str | None = None) -> list[dict[str, Any]]:
    if email is not None:
        email = accounts.resolve_account(ctx, user, email).email
    return [
        {
            "taskId": t.task_id,
            "id": t.uuid,
            "status": t.status.value,
            "replyUrl": t.reply_url,
            "replyRef": t.reply_ref,
        }
        for t in ctx.tasks.in_flight(user.id)
        if email is None or t.email == email
    ]


def scheduler_cancel(ctx: AppContext, user: User, task_id: str) -> None:
    """Stop an in-flight task and free its maxJobs slot (useapi §7)."""
    try:
        task = get(ctx, user, task_id)
    except errors.NotFound:
        task = None
    if task is None or task.status not in IN_FLIGHT or not _cancel(ctx, task):
        raise errors.NotFound(f"Unable to locate running taskId {task_id}")
