"""The contract's composite ids: `user:<n>-runwayml:<email>-task:<uuid>` (and `-asset:`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

Kind = Literal["task", "asset"]

#: user ids are 32-bit INTEGER columns (on PostgreSQL): no larger number names a user
MAX_USER_ID = 2**31 - 1
_COMPOSITE = re.compile(
    r"^user:(?P<user>[0-9]{1,10})-runwayml:(?P<email>.+)-(?P<kind>task|asset):(?P<uuid>[0-9a-fA-F-]{36})$"
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
    if m is None or m["kind"] != kind or "\x00" in text:
        return None
    try:
        uid = str(uuid.UUID(m["uuid"]))
    except ValueError:
        return None
    user_id = parse_user_number(m["user"])
    if user_id is None:
        return None
    return CompositeId(user_id, m["email"], kind, uid)


def parse_own_id(raw: str, kind: Kind, user_id: int) -> CompositeId | None:
    """`parse_id`, and None too when the id names another user (tenancy: their task or asset
    is a 404 to this one, never a 403)."""
    parsed = parse_id(raw, kind)
    return parsed if parsed is not None and parsed.user_id == user_id else None


def parse_user_number(text: str) -> int | None:
    """A user number in ASCII digits within what the store holds (`MAX_USER_ID`), or None:
    `int()` would take other scripts' digits, thousands of digits, or numbers no column fits."""
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= MAX_USER_ID else None
