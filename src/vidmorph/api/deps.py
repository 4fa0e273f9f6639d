"""FastAPI dependencies: the application context and the authenticated user."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from vidmorph import errors
from vidmorph.api import bodies
from vidmorph.api.errors import describe_errors
from vidmorph.domain.models import User
from vidmorph.service.accounts import Authenticator
from vidmorph.service.context import AppContext

# Both are `async def`: FastAPI runs a plain `def` dependency in the threadpool, a hop that
# costs more than the work. Only a token not yet verified goes to a thread (the database).


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def get_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    auth: Authenticator = request.app.state.auth
    user = auth.cached(authorization)
    if user is None:
        user = await run_in_threadpool(auth.authenticate, authorization)
    return user


M = TypeVar("M", bound=BaseModel)

CtxDep = Annotated[AppContext, Depends(get_ctx)]
UserDep = Annotated[User, Depends(get_user)]


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON or form body as a dict; form values stay strings for pydantic to coerce. The
    body is bounded by VIDMORPH_MAX_JSON_BYTES (413) and VIDMORPH_BODY_TIMEOUT_S (408)."""
    # compat(useapi §1): every create endpoint takes JSON or multipart/form-data.
    settings = request.app.state.ctx.settings
    raw = await bodies.read_all(request, settings.body_timeout_s, settings.max_json_bytes)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # Starlette parses a form from the body it cached; ours was read with its bounds.
        request._body = raw
        form = await request.form()
        data: Any = {k: v for k, v in form.items() if isinstance(v, str) and v != ""}
    else:
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            raise errors.BadRequest("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise errors.BadRequest("The request body must be a JSON object.")
    if _holds_nul(data):
        raise errors.BadRequest("Text in the request may not contain NUL characters.")
    result: dict[str, Any] = data
    return result


def _holds_nul(value: Any) -> bool:
    """Whether a parsed body has a NUL character in any key or string (no database stores
    them); iterative, since the body may nest deeply."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.BadRequest(describe_errors(exc.errors())) from None
