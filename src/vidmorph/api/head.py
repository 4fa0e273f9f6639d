"""HEAD answered wherever GET is (RFC 9110 section 9.3.2): the same headers, no body."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

#: paths whose GET is no short answer: the event stream lasts as long as its task, and the
#: signed file links have a HEAD route of their own that sends the file's headers alone
_NO_HEAD_AS_GET = re.compile(r"/events$|^/v1/runwayml/files/")


def answers_head(path: str) -> bool:
    """Whether HEAD of `path` is answered as its GET (`HeadAsGet`)."""
    return _NO_HEAD_AS_GET.search(path) is None


class HeadAsGet:
    """ASGI middleware: a HEAD is routed as the GET of its path (RFC 9110: the same headers,
    no body; the server, uvicorn, sends none for a HEAD). Load balancers and link checkers
    probe with HEAD; FastAPI's routes take only the methods they name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD" and answers_head(scope["path"]):
            scope = {**scope, "method": "GET"}  # a copy: the server keeps its own as HEAD
        await self.app(scope, receive, send)
