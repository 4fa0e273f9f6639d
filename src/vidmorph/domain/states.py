"""Task statuses and the transitions allowed between them; the store enforces them in SQL."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    #: past the account's maxJobs on Runway's own API (useapi's answers 429 instead): waits for
    #: a slot, then becomes PENDING
    THROTTLED = "THROTTLED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL: frozenset[TaskStatus] = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED}
)
IN_FLIGHT: frozenset[TaskStatus] = frozenset(
    {TaskStatus.PENDING, TaskStatus.THROTTLED, TaskStatus.RUNNING}
)
#: statuses whose reserved credits go back to the account
RELEASES_CREDITS: frozenset[TaskStatus] = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})
#: what holds one of an account's maxJobs slots (a THROTTLED task waits for one)
TAKES_A_SLOT: frozenset[TaskStatus] = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})

#: from -> the statuses it may move to. RUNNING -> PENDING is a lease that lapsed (crash).
ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.PENDING, TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.THROTTLED: frozenset({TaskStatus.PENDING, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.SUCCEEDED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def sources_of(to: TaskStatus) -> frozenset[TaskStatus]:
    """Every status from which `to` may be reached."""
    return frozenset(s for s, targets in ALLOWED.items() if to in targets)


def check_transition(from_: TaskStatus, to: TaskStatus) -> bool:
    return to in ALLOWED[from_]


def parse_statuses(text: str) -> list[TaskStatus]:
    """`"PENDING,RUNNING"` -> statuses; raises ValueError naming the unknown word."""
    out: list[TaskStatus] = []
    for word in (w.strip().upper() for w in text.split(",")):
        if not word:
            continue
        try:
            out.append(TaskStatus(word))
        except ValueError:
            raise ValueError(f"Unknown status {word!r}") from None
    return out
