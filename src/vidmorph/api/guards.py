"""Requests refused before routing, in the contract's envelope.

A NUL character in a path or query string (`%00` once decoded) reaches no route: no database
stores one in text (PostgreSQL refuses it with an error), and no id, email or name needs one.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from vidmorph.api.errors import envelope


class RefuseNul:
    """ASGI middleware: 400 for a request whose path or query string holds a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _holds_nul(scope):
            response = envelope(400, "Paths and query strings may not contain NUL characters.")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _holds_nul(scope: Scope) -> bool:
    path: str = scope["path"]  # already percent-decoded by the server
    query: bytes = scope.get("query_string", b"")
    return "\x00" in path or (b"%00" in query and b"\x00" in unquote_to_bytes(query))
