"""/tasks and /scheduler: read, list, cancel and delete tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from vidmorph import errors
from vidmorph.api.deps import CtxDep, UserDep, get_user
from vidmorph.api.openapi import doc
from vidmorph.domain.states import parse_statuses
from vidmorph.service import tasks
from vidmorph.service.context import AppContext
from vidmorph.service.views import task_views

router = APIRouter()
_STATUS = "(PENDING|RUNNING|THROTTLED|SUCCEEDED|FAILED|CANCELLED)"
#: what `statuses` takes (the route also takes lower case and spaces)
STATUSES_PATTERN = f"^({_STATUS}(,{_STATUS})*)?$"


@router.get("/tasks/{task_id}", **doc(404, ok="Task", path=("task_id",)))
async def get_task(request: Request) -> Any:
    # The hot path: clients poll it for every task in flight. It takes the Request alone, as
    # FastAPI's dependency solving costs more than the rest of the request; ctx and user are
    # what CtxDep and UserDep resolve. One prepared read in the event loop: a local file read on
    # SQLite (tens of microseconds), an awaited round trip on PostgreSQL's async pool.
    ctx: AppContext = request.app.state.ctx
    user = await get_user(request, request.headers.get("authorization"))
    task_id = request.path_params["task_id"]
    return Response(await tasks.view_json_async(ctx, user, task_id), media_type="application/json")


@router.get("/tasks/", **doc(404, ok="Task", many=True))
@router.get("/tasks", include_in_schema=False)
def list_tasks(
    ctx: CtxDep,
    user: UserDep,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    statuses: Annotated[
        list[str],
        Query(
            description="Comma-separated statuses to list, e.g. PENDING,RUNNING; the "
            "parameter may also be repeated (statuses=PENDING&statuses=RUNNING).",
            json_schema_extra={"items": {"type": "string", "pattern": STATUSES_PATTERN}},
        ),
    ] = [],  # noqa: B006 (FastAPI copies a default; it is never shared)
    email: str | None = None,
) -> Any:
    try:
        wanted = parse_statuses(",".join(statuses))
    except ValueError as exc:
        raise errors.BadRequest(f"statuses: {exc}") from None
    found = tasks.page(ctx, user, email, wanted, offset, limit)
    return JSONResponse(task_views(ctx, found))


@router.delete("/tasks/{task_id}", status_code=204, **doc(404))
def delete_task(task_id: str, ctx: CtxDep, user: UserDep) -> Response:
    tasks.cancel_or_delete(ctx, user, task_id)
    return Response(status_code=204)


@router.get("/scheduler/", **doc(ok="SchedulerEntry", many=True))
@router.get("/scheduler", include_in_schema=False)
def scheduler(ctx: CtxDep, user: UserDep, email: str | None = None) -> Any:
    """Every task of the user's in flight; with `email`, that account's only (404 for an
    unknown one)."""
    return JSONResponse(tasks.scheduler(ctx, user, email))


@router.delete("/scheduler/{task_id}", status_code=204, **doc(404))
def scheduler_cancel(task_id: str, ctx: CtxDep, user: UserDep) -> Response:
    tasks.scheduler_cancel(ctx, user, task_id)
    return Response(status_code=204)
