"""Runway's own developer API under `/v1/`, so its official SDKs work with only the base URL
and the key changed: video_to_video, tasks, uploads, organization and its usage.

Every route but the upload form target (which the SDK posts to with no headers of its own)
needs `X-Runway-Version: 2024-11-06`. Errors are Runway's `{"error": "..."}` (api/errors.py
tells the two surfaces apart by path).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from python_multipart.exceptions import FormParserError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from vidmorph import errors
from vidmorph.api import bodies
from vidmorph.api.deps import CtxDep, UserDep, get_user, parse
from vidmorph.api.openapi_runway import VIDEO_TO_VIDEO_BODY, runway_doc
from vidmorph.api.runway_schemas import (
    MODELS,
    RUNWAY_VERSION,
    Aleph2In,
    Gen4AlephIn,
    UploadIn,
    UsageIn,
)
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.service import runway, tasks, uploads
from vidmorph.service.context import AppContext

#: a data URI of Runway's largest (16 MB) in base64, with room for the rest of the body
VIDEO_BODY_MAX_BYTES = 24 * 2**20


async def require_version(
    x_runway_version: Annotated[str | None, Header(alias="X-Runway-Version")] = None,
) -> None:
    if x_runway_version is None:
        raise errors.BadRequest(
            f"The X-Runway-Version header is missing; this server speaks {RUNWAY_VERSION}."
        )
    if x_runway_version != RUNWAY_VERSION:
        shown = x_runway_version if len(x_runway_version) <= 40 else x_runway_version[:40] + "..."
        raise errors.BadRequest(
            f"X-Runway-Version {shown!r} is not known here; this server speaks {RUNWAY_VERSION}."
        )


router = APIRouter(dependencies=[Depends(require_version)], tags=["Runway API"])
forms = APIRouter(tags=["Runway API"])
#: the poll, which checks the version header itself (no dependencies to solve)
polls = APIRouter(tags=["Runway API"])


@router.post(
    "/video_to_video",
    **runway_doc(408, 413, 429, 503, ok="RunwayTaskCreated", body=VIDEO_TO_VIDEO_BODY),
)
async def video_to_video(request: Request, ctx: CtxDep, user: UserDep) -> Any:
    s = ctx.settings
    raw = await bodies.read_all(request, s.body_timeout_s, VIDEO_BODY_MAX_BYTES)
    data = _json_object(raw)
    model = data.get("model")
    if model not in MODELS:
        raise errors.BadRequest(f"model: must be one of {', '.join(MODELS)} on this server.")
    body: Gen4AlephIn | Aleph2In = (
        parse(Gen4AlephIn, data) if model == "gen4_aleph" else parse(Aleph2In, data)
    )
    req = runway.RunwayRequest(
        model=body.model,
        video_uri=body.videoUri,
        prompt_text=body.promptText,
        seed=body.seed,
        reference_uri=body.references[0].uri
        if isinstance(body, Gen4AlephIn) and body.references
        else None,
        keyframes=len(body.keyframes or ()) if isinstance(body, Aleph2In) else 0,
        target_aspect_ratio=body.targetAspectRatio if isinstance(body, Aleph2In) else None,
        output_format=body.outputFormat if isinstance(body, Aleph2In) else "mp4",
    )
    task = await run_in_threadpool(runway.create, ctx, user, req)
    return JSONResponse({"id": task.uuid, "estimatedCost": {"credits": task.credits}})


@polls.get("/tasks/{task_id}", **runway_doc(ok="RunwayTask", path=("task_id",), version=True))
async def get_task(request: Request) -> Any:
    # The SDKs' poll (tasks.retrieve, wait_for_task_output): the same hot path as useapi's,
    # with the Request alone, as FastAPI's dependency solving costs more than the rest.
    await require_version(request.headers.get("x-runway-version"))
    ctx: AppContext = request.app.state.ctx
    user = await get_user(request, request.headers.get("authorization"))
    task_id = request.path_params["task_id"]
    return Response(await runway.task_json(ctx, user, task_id), media_type="application/json")


@router.delete("/tasks/{task_id}", status_code=204, **runway_doc(no_content=True))
def delete_task(task_id: str, ctx: CtxDep, user: UserDep) -> Response:
    task = _task(ctx, user.id, task_id)
    tasks.cancel_or_delete(ctx, user, task.task_id)
    return Response(status_code=204)


@router.get("/organization", **runway_doc(ok="RunwayOrganization"))
def organization(ctx: CtxDep, user: UserDep) -> Any:
    return JSONResponse(runway.organization_view(ctx, user))


@router.post(
    "/organization/usage",
    **runway_doc(
        408, ok="RunwayUsage", body={"$ref": "#/components/schemas/UsageIn"}, body_required=False
    ),
)
async def organization_usage(request: Request, ctx: CtxDep, user: UserDep) -> Any:
    s = ctx.settings
    body = parse(UsageIn, _json_object(await bodies.read_all(request, s.body_timeout_s, 2**12)))
    start, before = body.days(utcnow().date())
    return JSONResponse(await run_in_threadpool(runway.usage_view, ctx, user, start, before))


@router.post(
    "/uploads",
    **runway_doc(408, 413, ok="RunwayUpload", body={"$ref": "#/components/schemas/UploadIn"}),
)
async def create_upload(request: Request, ctx: CtxDep, user: UserDep) -> Any:
    s = ctx.settings
    body = parse(UploadIn, _json_object(await bodies.read_all(request, s.body_timeout_s, 2**16)))
    return JSONResponse(await run_in_threadpool(uploads.create, ctx, user, body.filename))


@forms.post(
    "/uploads/{upload_id}",
    status_code=204,
    **runway_doc(408, 413, 503, public=True, no_content=True, form=True),
)
async def upload_form(
    upload_id: str,
    request: Request,
    ctx: CtxDep,
    expires: Annotated[int, Query()] = 0,
    sig: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The signed form target: the SDK's multipart POST (fields, then the file as `file`)."""
    upload = await run_in_threadpool(uploads.check_target, ctx, upload_id, expires, sig)
    s = ctx.settings

    async def stream() -> AsyncGenerator[bytes, None]:
        limits = (s.body_timeout_s, s.max_upload_bytes, s.min_upload_rate_bytes_s)
        async for chunk in bodies.chunks(request, *limits):
            yield chunk

    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data") or "boundary=" not in ctype:
        raise errors.BadRequest("The upload must be multipart/form-data with the file as file.")
    parser = MultiPartParser(request.headers, stream(), max_files=1, max_fields=50)
    try:
        form = await parser.parse()
    except (MultiPartException, FormParserError):
        raise errors.BadRequest("The multipart form is malformed.") from None
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise errors.BadRequest("The form has no file part named file.")
        path = await run_in_threadpool(_spool, part.file, ctx.tmp_dir)
        content_type = (part.content_type or "").split(";")[0].strip().lower()
        await run_in_threadpool(uploads.receive, ctx, upload, path, content_type)
    finally:
        await form.close()
    return Response(status_code=204)


def _spool(source: Any, tmp_dir: Path) -> Path:
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="upload-", delete=False) as out:
        source.seek(0)
        while chunk := source.read(1 << 20):
            out.write(chunk)
    return Path(out.name)


def _task(ctx: AppContext, user_id: int, task_id: str) -> Any:
    """The user's task by Runway's id (the uuid; a useapi taskId is taken too)."""
    parsed = ids.parse_own_id(task_id, "task", user_id)
    found = ctx.tasks.get(parsed.uuid if parsed else task_id, user_id)
    if found is None:
        raise errors.NotFound("Task not found.")
    return found


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise errors.BadRequest("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    return data
