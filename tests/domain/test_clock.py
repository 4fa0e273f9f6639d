"""Timestamps on the wire: ISO 8601 in UTC, milliseconds, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from vidmorph.domain.clock import iso, utcnow


def test_a_stored_moment_is_shown_to_the_millisecond_with_z() -> None:
    assert iso(datetime(2024, 8, 1, 1, 2, 3, 456789)) == "2024-08-01T01:02:03.456Z"
    assert iso(datetime(2024, 8, 1, 1, 2, 3)) == "2024-08-01T01:02:03.000Z"
    assert iso(datetime(999, 1, 2, 3, 4, 5, 999)) == "0999-01-02T03:04:05.000Z"


def test_an_aware_moment_is_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    assert iso(datetime(2024, 8, 1, 3, 2, 3, 456000, tzinfo=paris)) == "2024-08-01T01:02:03.456Z"
    assert iso(datetime(2024, 8, 1, 1, 2, 3, tzinfo=UTC)) == "2024-08-01T01:02:03.000Z"


def test_no_moment_is_none_and_now_is_naive_utc() -> None:
    assert iso(None) is None
    now = utcnow()
    assert now.tzinfo is None
    assert abs(datetime.now(UTC).replace(tzinfo=None) - now) < timedelta(seconds=5)
