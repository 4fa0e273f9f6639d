"""Composite ids (raw and percent-encoded) and the task state machine's table."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from vidmorph.domain import ids, states
from vidmorph.domain.states import TaskStatus

UID = "eb423ffd-a5e2-40f5-9ec9-a7c06a2d3d6b"


def test_task_id_round_trips_raw_and_percent_encoded() -> None:
    raw = f"user:2478-runwayml:harry@momomedia.io-task:{UID}"
    for form in (raw, quote(raw, safe=""), quote(raw)):
        parsed = ids.parse_id(form, "task")
        assert parsed is not None and str(parsed) == raw
        assert (parsed.user_id, parsed.email, parsed.uuid) == (2478, "harry@momomedia.io", UID)


def test_emails_with_dashes_and_the_wrong_kind() -> None:
    raw = f"user:1-runwayml:a-b-task@x-y.com-asset:{UID}"
    parsed = ids.parse_id(raw, "asset")
    assert parsed is not None and parsed.email == "a-b-task@x-y.com"
    assert ids.parse_id(raw, "task") is None
    for bad in (
        "",
        "task:" + UID,
        f"user:x-runwayml:a@b-task:{UID}",
        "user:1-runwayml:a@b-task:nope",
    ):
        assert ids.parse_id(bad, "task") is None


def test_terminal_states_go_nowhere_and_running_can_lapse_back() -> None:
    for status in states.TERMINAL:
        assert states.ALLOWED[status] == frozenset()
    assert states.check_transition(TaskStatus.RUNNING, TaskStatus.PENDING)
    assert not states.check_transition(TaskStatus.PENDING, TaskStatus.SUCCEEDED)
    assert states.sources_of(TaskStatus.CANCELLED) == states.IN_FLIGHT
    # A THROTTLED task waits for a slot: it may get one, or end without running.
    assert states.ALLOWED[TaskStatus.THROTTLED] == {
        TaskStatus.PENDING,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    }
    assert TaskStatus.THROTTLED not in states.TAKES_A_SLOT


def test_status_filters_parse_and_name_unknown_words() -> None:
    assert states.parse_statuses("pending, RUNNING,") == [TaskStatus.PENDING, TaskStatus.RUNNING]
    with pytest.raises(ValueError, match="BOGUS"):
        states.parse_statuses("PENDING,BOGUS")


def test_user_numbers_are_ascii_digits_within_the_stored_range() -> None:
    assert ids.parse_user_number("1") == 1
    assert ids.parse_user_number(str(ids.MAX_USER_ID)) == ids.MAX_USER_ID
    for bad in ("", "0x1", "-1", "²", "١٢", str(ids.MAX_USER_ID + 1), "9" * 5000):
        assert ids.parse_user_number(bad) is None, bad
    uid = "1c51ecef-f472-48c7-9bc4-18d972efce07"
    assert ids.parse_id(f"user:{'9' * 11}-runwayml:a@b.c-task:{uid}", "task") is None
