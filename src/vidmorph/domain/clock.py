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
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
