"""/assets: raw-body upload with a size limit, list, get, delete; and signed file downloads."""

from __future__ import annotations

import re
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from vidmorph import errors
from vidmorph.api import bodies
from vidmorph.api.deps import CtxDep, UserDep
from vidmorph.api.openapi import FILE_CONTENT, doc
from vidmorph.api.schemas import no_controls
from vidmorph.config import Settings
from vidmorph.domain.media_types import served_type
from vidmorph.service import accounts
from vidmorph.service import assets as asset_service
from vidmorph.service.views import asset_view, listed_asset_view
from vidmorph.storage.local import LocalStorage

router = APIRouter()


@router.post("/assets/", **doc(404, 408, 413, 503, ok="Asset", upload=True))
@router.post("/assets", include_in_schema=False)
async def upload_asset(
    request: Request,
    ctx: CtxDep,
    user: UserDep,
    name: Annotated[str | None, Query(max_length=1000)] = None,
    email: str | None = None,
) -> Any:
    # compat(useapi §3): duration/width/height query values are "for your records only"; the
    # probe measures the real ones.
    try:
        no_controls(name)
    except ValueError as exc:
        raise errors.BadRequest(f"name: {exc}.") from None
    content_type = request.headers.get("content-type", "")
    asset_service.media_type_of(content_type)
    account = await run_in_threadpool(accounts.resolve_account, ctx, user, email)
    s = ctx.settings
    upload = await _receive(request, ctx.tmp_dir, s)
    asset = await run_in_threadpool(
        asset_service.ingest, ctx, user, account.email, name or upload.stem, content_type, upload
    )
    return JSONResponse(await run_in_threadpool(asset_view, ctx, asset))


async def _receive(request: Request, tmp_dir: Path, s: Settings) -> Path:
    """Stream the raw body to a temp file; 413 past the upload limit, 408 when it stalls or
    trickles (api.bodies), and no file left behind either way."""
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="upload-", delete=False) as out:
        path = Path(out.name)
        try:
            limits = (s.body_timeout_s, s.max_upload_bytes, s.min_upload_rate_bytes_s)
            async for chunk in bodies.chunks(request, *limits):
                out.write(chunk)
        except BaseException:
            out.close()
            path.unlink(missing_ok=True)
            raise
    return path


@router.get("/assets/", **doc(404, ok="Asset", many=True))
@router.get("/assets", include_in_schema=False)
def list_assets(
    ctx: CtxDep,
    user: UserDep,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
    limit: Annotated[int, Query(ge=1, le=50)] = 50,
    mediaType: Literal["video", "image", "audio"] | None = None,
    email: str | None = None,
) -> Any:
    account = accounts.resolve_account(ctx, user, email)
    found = ctx.assets.page(user.id, account.email, mediaType, offset, limit)
    return JSONResponse([listed_asset_view(ctx, a) for a in found])


@router.get("/assets/{asset_id}", **doc(404, ok="Asset"))
def get_asset(asset_id: str, ctx: CtxDep, user: UserDep) -> Any:
    return JSONResponse(asset_view(ctx, asset_service.get(ctx, user, asset_id)))


@router.delete("/assets/{asset_id}", status_code=204, **doc(404, 409))
def delete_asset(asset_id: str, ctx: CtxDep, user: UserDep) -> Response:
    asset_service.delete(ctx, user, asset_id)
    return Response(status_code=204)


#: a Range header RFC 9110 defines; any other is ignored (the whole file), not a 400
_RANGES = re.compile(r"bytes=\s*(\d+-\d*|-\d+)(\s*,\s*(\d+-\d*|-\d+))*\s*", re.ASCII)


def _ignore_bad_range(scope: MutableMapping[str, Any]) -> None:
    headers = scope["headers"]
    for name, value in headers:
        if name == b"range" and not _well_formed(value.decode("latin-1")):
            scope["headers"] = [(n, v) for n, v in headers if n != b"range"]
            return


def _well_formed(value: str) -> bool:
    if not _RANGES.fullmatch(value):
        return False
    for part in value.removeprefix("bytes=").split(","):
        first, _, last = part.strip().partition("-")
        if first and last and int(first) > int(last):
            return False
    return True


@router.get("/files/{key:path}", **doc(404, ok=FILE_CONTENT, public=True))
def download(key: str, ctx: CtxDep, request: Request, expires: int = 0, sig: str = "") -> Any:
    """A signed, expiring link to an asset's bytes; no token needed, like a presigned URL."""
    _ignore_bad_range(request.scope)
    storage = ctx.storage
    # With object storage, links are the store's own presigned URLs; none end here.
    if not isinstance(storage, LocalStorage) or not storage.verify(key, expires, sig):
        raise errors.NotFound("This link has expired or is not valid.")
    try:
        path = storage.local_path(key)
    except FileNotFoundError:
        raise errors.NotFound() from None
    return FileResponse(path, filename=path.name, media_type=served_type(key))


async def download_head(request: Request) -> Response:
    """HEAD of a signed link (a plain route; api.head answers other HEADs as GETs): the file's
    length, type and ETag, without reading it."""
    query = request.query_params
    expires = query.get("expires", "0")
    return await run_in_threadpool(
        download,
        request.path_params["key"],
        request.app.state.ctx,
        request,
        int(expires) if expires.isascii() and expires.isdigit() else 0,
        query.get("sig", ""),
    )
