"""Requests refused before routing, in the envelope of the surface they came to.

A NUL character in a path (404) or a query string (400; `%00` once decoded) reaches no route:
no database stores one in text (PostgreSQL refuses it with an error), and no id, email or name
needs one. No other control character (a newline, a tab) belongs in a path either, and one can
make a path match a route it was not meant for (a regular expression's `$` matches before a
final newline: `/assets/%0A` would read as `/assets/`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from vidmorph.api.errors import answer_for_path
from vidmorph.api.head import head_as_get


class Guards:
    """ASGI middleware: 404 for a path holding a control character (it names nothing here),
    400 for a query string holding a NUL; and a HEAD routed as its GET (`api.head`), in the
    same layer, as every layer costs each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            if scope["method"] == "HEAD":
                scope = head_as_get(scope)
        await self.app(scope, receive, send)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _refusal(scope: Scope) -> JSONResponse | None:
    path: str = scope["path"]  # already percent-decoded by the server
    if _CONTROL.search(path):
        return answer_for_path(path, 404, "Not found.")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query and b"\x00" in unquote_to_bytes(query):
        return answer_for_path(path, 400, "Query strings may not contain NUL characters.")
    return None
