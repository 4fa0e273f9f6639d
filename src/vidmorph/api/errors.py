"""The only mapping from exceptions to the contract's envelope `{"error": ..., "code": N}`."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, compile_path

from vidmorph import errors
from vidmorph.api.head import answers_head
from vidmorph.api.slashes import other_slash_form

log = logging.getLogger(__name__)

_STATUS_TEXT = {404: "Not found.", 405: "Method not allowed.", 401: "Unauthorized"}


#: refusals sent before the body was read to its end: the rest of it cannot be told from a
#: next request, so the connection closes after the answer
_CLOSES = (408, 413)


def envelope(status: int, message: str, **extra: object) -> JSONResponse:
    headers = {"Retry-After": "10"} if status in (429, 503) else None
    if status in _CLOSES:
        headers = {"Connection": "close"}
    return JSONResponse({"error": message, **extra, "code": status}, status, headers=headers)


#: Runway's developer API (its SDKs' `/v1/...`) answers `{"error": "..."}`, with its statuses
_RUNWAY_STATUS = {412: 400}


def is_runway_path(path: str) -> bool:
    return path.startswith("/v1/") and not (
        path.startswith("/v1/runwayml/") or path == "/v1/runwayml"
    )


def answer(request: Request, status: int, message: str, **extra: object) -> JSONResponse:
    """The error in the envelope of the surface the request came to."""
    return answer_for_path(request.url.path, status, message, **extra)


def answer_for_path(path: str, status: int, message: str, **extra: object) -> JSONResponse:
    """`answer` by the path alone (for middleware, before there is a Request)."""
    if not is_runway_path(path):
        return envelope(status, message, **extra)
    status = _RUNWAY_STATUS.get(status, status)
    response = JSONResponse({"error": message}, status)
    if status in _CLOSES:
        response.headers["Connection"] = "close"
    return response


def describe_errors(errs: Sequence[Any]) -> str:
    """pydantic's error list as one readable line: `seconds: Input should be ...; ...`."""
    parts = []
    for err in errs:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "Invalid request."


class MethodTable:
    """Which methods each path takes, for a 405's `Allow`: Starlette's 405 names only the
    methods of the first route that matched, and a path here is served by a route per method."""

    def __init__(self) -> None:
        self._rows: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def add(self, prefix: str, routes: Sequence[BaseRoute]) -> None:
        for route in routes:
            methods = getattr(route, "methods", None)
            path = getattr(route, "path", None)
            if methods and path:
                regex, _, _ = compile_path(prefix + path)
                self._rows.append((regex, frozenset(methods)))

    def allowed(self, path: str) -> str:
        found: set[str] = set()
        # a path is served with or without its trailing slash (api.slashes)
        other = other_slash_form(path)
        forms = (path,) if other is None else (path, other)
        for regex, methods in self._rows:
            if any(regex.match(form) for form in forms):
                found |= methods
        if "GET" in found and answers_head(path):  # api.guards routes it as the GET (api.head)
            found.add("HEAD")
        return ", ".join(sorted(found))


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.VidmorphError)
    async def _typed(request: Request, exc: errors.VidmorphError) -> JSONResponse:
        return answer(request, exc.status, exc.public_message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(request, 400, describe_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        text = _STATUS_TEXT.get(exc.status_code, str(exc.detail))
        response = answer(request, exc.status_code, text)
        response.headers.update(exc.headers or {})
        table: MethodTable | None = getattr(request.app.state, "methods", None)
        if exc.status_code == 405 and table is not None:
            response.headers["Allow"] = table.allowed(request.url.path)
        return response

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # The client left mid-body: nobody reads this answer, and it is no server fault.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return answer(request, 400, "The request body ended early.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, 500, "Internal server error.")
