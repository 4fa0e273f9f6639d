"""The contract's composite ids: `user:<n>-runwayml:<email>-task:<uuid>` (and `-asset:`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

Kind = Literal["task", "asset"]

_COMPOSITE = re.compile(
    r"^user:(?P<user>\d+)-runwayml:(?P<email>.+)-(?P<kind>task|asset):(?P<uuid>[0-9a-fA-F-]{36})$"
)


@dataclass(frozen=True)
class CompositeId:
    user_id: int
    email: str
    kind: Kind
    uuid: str

    def __str__(self) -> str:
        return f"user:{self.user_id}-runwayml:{self.email}-{self.kind}:{self.uuid}"


def new_uuid() -> str:
    return str(uuid.uuid4())


def format_id(user_id: int, email: str, kind: Kind, uid: str) -> str:
    return str(CompositeId(user_id, email, kind, uid))


def parse_id(raw: str, kind: Kind) -> CompositeId | None:
    """Parse a composite id, raw or percent-encoded; None when it is not one of `kind`."""
    # compat(useapi §1): clients put ids unencoded in paths (`:` and `@`), others encode them.
    text = unquote(raw.strip())
    m = _COMPOSITE.match(text)
    if m is None or m["kind"] != kind:
        return None
    try:
        uid = str(uuid.UUID(m["uuid"]))
    except ValueError:
        return None
    return CompositeId(int(m["user"]), m["email"], kind, uid)
