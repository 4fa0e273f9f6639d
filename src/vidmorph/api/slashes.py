"""A path with or without its trailing slash is answered in place, never redirected.

The contract writes its lists with a slash (`/tasks/`, `/assets/`, `/features/`) and its items
without (`/tasks/{taskId}`); clients write both. Starlette's default answers the other form
with a bare 307 whose Location it builds from the request's Host header (anyone's to set), and
clients that do not follow redirects (httpx by default) see a failure. Here a path no route
takes is tried once more with its trailing slash added or removed, before the 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send


def answer_either_slash(app: FastAPI) -> None:
    router = app.router
    router.redirect_slashes = False
    not_found = router.default

    async def other_form(scope: Scope, receive: Receive, send: Send) -> None:
        found = _route_of(router.routes, scope) if scope["type"] == "http" else None
        if found is None:
            await not_found(scope, receive, send)
            return
        route, other = found
        await route.handle(other, receive, send)

    router.default = other_form


def other_slash_form(path: str) -> str | None:
    """`path` with its trailing slash removed, or added; None for the root."""
    if path in ("", "/"):
        return None
    return path.rstrip("/") if path.endswith("/") else path + "/"


def _route_of(routes: list[BaseRoute], scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
    """The route that takes `scope`'s path in its other form (the first full match, else the
    first of another method, whose 405 names the methods), with the scope it takes."""
    other_path = other_slash_form(scope["path"])
    if other_path is None:
        return None
    other = {**scope, "path": other_path, "raw_path": other_path.encode("latin-1", "replace")}
    partial: tuple[BaseRoute, dict[str, Any]] | None = None
    for route in routes:
        match, child = route.matches(other)
        if match is Match.FULL:
            return route, {**other, **child}
        if match is Match.PARTIAL and partial is None:
            partial = route, {**other, **child}
    return partial
