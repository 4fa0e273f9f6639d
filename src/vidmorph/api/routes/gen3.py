"""POST /gen3/video, /gen3turbo/video and /gen4/video: create a video-to-video task."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from vidmorph import errors
from vidmorph.api.deps import get_user, parse, read_body
from vidmorph.api.openapi import doc
from vidmorph.api.schemas import Gen3TurboVideoIn, Gen3VideoIn, Gen4VideoIn
from vidmorph.domain.models import User
from vidmorph.service import generate
from vidmorph.service.context import AppContext
from vidmorph.service.generate import CreateRequest
from vidmorph.service.views import task_view

router = APIRouter()
#: the longest Idempotency-Key taken (a longer one is a 400)
MAX_IDEMPOTENCY_KEY = 200
_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A repeat with the same key and body answers with the first task.",
    "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
}


def _create(
    ctx: AppContext, user: User, req: CreateRequest, task_type: str, key: str | None
) -> dict[str, Any]:
    task, source, account = generate.create(ctx, user, req, task_type, key)
    return task_view(ctx, task, source, account)


async def _admit(
    request: Request, task_type: str, to_request: Callable[[dict[str, Any]], CreateRequest]
) -> JSONResponse:
    """What each create route does. The routes take the Request alone (as the polls do):
    FastAPI's dependency solving cost more than the service's own work; ctx and user are
    what CtxDep and UserDep resolve, and the Idempotency-Key header is checked here. On
    SQLite the create runs in the event loop (generate.create_async), with no thread hop."""
    ctx: AppContext = request.app.state.ctx
    user = await get_user(request, request.headers.get("authorization"))
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise errors.BadRequest(
            f"Idempotency-Key: String should have at most {MAX_IDEMPOTENCY_KEY} characters"
        )
    req = to_request(await read_body(request))
    if not ctx.db.is_sqlite:  # its reads are round trips: in a thread, not the event loop
        return JSONResponse(await run_in_threadpool(_create, ctx, user, req, task_type, key))
    task, source, account = await generate.create_async(ctx, user, req, task_type, key)
    return JSONResponse(task_view(ctx, task, source, account))


def _doc(body: type[BaseModel]) -> dict[str, Any]:
    return doc(
        404, 408, 409, 412, 413, 429, 503, ok="Task", body=body, headers=(_IDEMPOTENCY_HEADER,)
    )


@router.post("/gen3/video", **_doc(Gen3VideoIn))
async def gen3_video(request: Request) -> Any:
    return await _admit(request, "gen3a", lambda raw: parse(Gen3VideoIn, raw).to_request())


@router.post("/gen3turbo/video", **_doc(Gen3TurboVideoIn))
async def gen3turbo_video(request: Request) -> Any:
    def to_request(raw: dict[str, Any]) -> CreateRequest:
        body = parse(Gen3TurboVideoIn, raw)
        return body.to_request(body.aspect_ratio)

    return await _admit(request, "gen3a_turbo", to_request)


@router.post("/gen4/video", **_doc(Gen4VideoIn))
async def gen4_video(request: Request) -> Any:
    return await _admit(request, "gen4_aleph", lambda raw: parse(Gen4VideoIn, raw).to_request())
