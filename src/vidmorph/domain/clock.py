"""Time as Vidmorph stores and shows it: naive UTC in the database, ISO 8601 `Z` on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC, the form every table stores (SQLite has no time zones)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    """`2024-08-01T01:02:03.456Z`, the contract's timestamp form."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: a third of the cost, on every timestamp of every answer
    return moment.isoformat(timespec="milliseconds") + "Z"
