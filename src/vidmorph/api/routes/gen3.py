"""POST /gen3/video, /gen3turbo/video and /gen4/video: create a video-to-video task."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vidmorph.api.deps import CtxDep, UserDep, parse, read_body
from vidmorph.api.openapi import doc
from vidmorph.api.schemas import Gen3TurboVideoIn, Gen3VideoIn, Gen4VideoIn
from vidmorph.domain.models import User
from vidmorph.service import generate
from vidmorph.service.context import AppContext
from vidmorph.service.generate import CreateRequest
from vidmorph.service.views import task_view

router = APIRouter()
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _create(
    ctx: AppContext, user: User, req: CreateRequest, task_type: str, key: str | None
) -> dict[str, Any]:
    task, source, account = generate.create(ctx, user, req, task_type, key)
    return task_view(ctx, task, source, account)


_CODES = (404, 408, 409, 412, 413, 429, 503)


@router.post("/gen3/video", **doc(*_CODES, ok="Task", body=Gen3VideoIn))
async def gen3_video(request: Request, ctx: CtxDep, user: UserDep, key: IdemKey = None) -> Any:
    body = parse(Gen3VideoIn, await read_body(request))
    return JSONResponse(
        await run_in_threadpool(_create, ctx, user, body.to_request(), "gen3a", key)
    )


@router.post("/gen3turbo/video", **doc(*_CODES, ok="Task", body=Gen3TurboVideoIn))
async def gen3turbo_video(request: Request, ctx: CtxDep, user: UserDep, key: IdemKey = None) -> Any:
    body = parse(Gen3TurboVideoIn, await read_body(request))
    req = body.to_request(body.aspect_ratio)
    return JSONResponse(await run_in_threadpool(_create, ctx, user, req, "gen3a_turbo", key))


@router.post("/gen4/video", **doc(*_CODES, ok="Task", body=Gen4VideoIn))
async def gen4_video(request: Request, ctx: CtxDep, user: UserDep, key: IdemKey = None) -> Any:
    body = parse(Gen4VideoIn, await read_body(request))
    req = body.to_request()
    return JSONResponse(await run_in_threadpool(_create, ctx, user, req, "gen4_aleph", key))
