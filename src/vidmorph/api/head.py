"""HEAD answered wherever GET is (RFC 9110 section 9.3.2): the same headers, no body."""

from __future__ import annotations

import re

from starlette.types import Scope

#: paths whose GET is no short answer: the event stream lasts as long as its task, and the
#: signed file links have a HEAD route of their own that sends the file's headers alone
_NO_HEAD_AS_GET = re.compile(r"/events$|^/v1/runwayml/files/")


def answers_head(path: str) -> bool:
    """Whether HEAD of `path` is answered as its GET (`head_as_get`)."""
    return _NO_HEAD_AS_GET.search(path) is None


def head_as_get(scope: Scope) -> Scope:
    """A HEAD's scope routed as the GET of its path (RFC 9110: the same headers, no body; the
    server, uvicorn, sends none for a HEAD), where `answers_head`. Load balancers and link
    checkers probe with HEAD; FastAPI's routes take only the methods they name. A copy: the
    server keeps its own scope, and so its HEAD."""
    return {**scope, "method": "GET"} if answers_head(scope["path"]) else scope
