"""GET /tasks/{taskId}/events: the task as Server-Sent Events, one `task` event per change.

Each event's data is the task object `GET /tasks/{taskId}` answers; the stream starts with
the task as it is, sends it again whenever its status, progress or place in line changes, and
ends after a terminal state (or a `deleted` event when the task goes). It reads the store, so
it follows a task whichever process runs it. Same auth and tenancy as `GET /tasks/{taskId}`:
another user's task is a 404 before any event.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from vidmorph import errors
from vidmorph.api.deps import CtxDep, UserDep
from vidmorph.api.openapi import doc
from vidmorph.domain.models import User
from vidmorph.domain.states import TERMINAL
from vidmorph.service import tasks
from vidmorph.service.context import AppContext

router = APIRouter()

#: a comment line this often keeps proxies from closing a quiet stream
KEEPALIVE_S = 15.0
_TERMINAL = frozenset(status.value for status in TERMINAL)


@router.get("/tasks/{task_id}/events", **doc(404, events=True))
async def task_events(task_id: str, request: Request, ctx: CtxDep, user: UserDep) -> Any:
    first = await run_in_threadpool(tasks.view, ctx, user, task_id)  # 404s before streaming
    stream = _events(request, ctx, user, task_id, first)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


def _change(view: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a new event: not signed URLs or timestamps, which move on their own."""
    fields = ("status", "progressRatio", "progressText", "placeInLine", "error")
    return tuple(json.dumps(view.get(name), sort_keys=True) for name in fields)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _events(
    request: Request, ctx: AppContext, user: User, task_id: str, view: dict[str, Any]
) -> AsyncIterator[str]:
    sent: tuple[Any, ...] | None = None
    quiet_since = time.monotonic()
    while True:
        change = _change(view)
        if change != sent:
            sent = change
            quiet_since = time.monotonic()
            yield _event("task", view)
            if view["status"] in _TERMINAL:
                return
        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(ctx.settings.events_poll_s)
        if await request.is_disconnected():
            return
        try:
            view = await run_in_threadpool(tasks.view, ctx, user, task_id)
        except errors.NotFound:
            yield _event("deleted", {"taskId": task_id})
            return
