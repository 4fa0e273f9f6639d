"""Callback fairness: one tenant's slow or failing receivers hold that tenant's sending slots
only, and a retry waits for its due time behind newer first tries, on SQLite and PostgreSQL.

Real loopback receivers, a real Deliverer on the context `vidmorph serve` builds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest

from tests.receiver import Receiver, most_at_once
from vidmorph.config import Settings
from vidmorph.container import build_context
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.service.accounts import create_token, ensure_default_setup
from vidmorph.service.context import AppContext
from vidmorph.service.notify import MAX_SENDS_PER_TARGET, MAX_SENDS_PER_USER, Deliverer


@pytest.fixture
def ctx(
    make_settings: Callable[..., Settings], either_database: dict[str, Any]
) -> Iterator[AppContext]:
    made = build_context(make_settings(**either_database, callback_timeout_s=1.0))
    ensure_default_setup(made)
    yield made
    made.db.close()


@pytest.fixture
def deliverer(ctx: AppContext) -> Iterator[Callable[[], Deliverer]]:
    started: list[Deliverer] = []

    def start() -> Deliverer:
        d = Deliverer(ctx, poll_s=0.1)
        d.start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


def queue(ctx: AppContext, user_id: int, url: str) -> int:
    return ctx.deliveries.enqueue(
        ids.new_uuid(), user_id, url, b'{"status":"SUCCEEDED"}', terminal=True, ttl_s=600
    )


def test_a_retry_waits_behind_a_newer_first_try(ctx: AppContext) -> None:
    """An older delivery whose retry came due after a newer one was queued goes second: claims
    follow due time, not age (by age, a failing receiver's retries starve every newer one)."""
    old = queue(ctx, 1, "http://127.0.0.1:9/a")
    assert [d.id for d in ctx.deliveries.claim_due(1, 30)] == [old]
    ctx.deliveries.retry_at(old, utcnow() + timedelta(seconds=0.3), "timed out")
    new = queue(ctx, 1, "http://127.0.0.1:9/b")
    time.sleep(0.4)  # both are due now; the new one since before the old one's retry
    assert [d.id for d in ctx.deliveries.claim_due(1, 30)] == [new]
    assert [d.id for d in ctx.deliveries.claim_due(1, 30)] == [old]


def test_another_users_callback_on_the_same_receiver_is_not_held_by_failing_ones(
    ctx: AppContext, deliverer: Callable[[], Deliverer]
) -> None:
    """User A's ten callbacks go to a path that never answers in time (each try times out and
    is retried); user B's callback to another path of the same host:port arrives at once."""
    user_b, _ = create_token(ctx)
    with Receiver(path_delays={"/slow": 60.0}) as hook:
        for _ in range(10):
            queue(ctx, 1, f"{hook.url}/slow")
        deliverer()
        # the first tries have timed out and retries are under way
        assert hook.wait_for(lambda r: len(r) >= 2 * MAX_SENDS_PER_TARGET + 2, timeout_s=15)
        queued_at = time.time()
        queue(ctx, user_b.id, f"{hook.url}/fast")
        Deliverer.wake_all()
        assert hook.wait_for(lambda r: any(x.path == "/fast" for x in r), timeout_s=10)
        fast = next(x for x in hook.requests if x.path == "/fast")
        slow = [x for x in hook.requests if x.path == "/slow"]
    assert fast.received_at_s - queued_at < 1.0, "user B waited behind user A's retries"
    # A's sends to its receiver never went past its allowance (each one lasts the 1 s timeout)
    assert most_at_once(slow, 1.0) <= MAX_SENDS_PER_TARGET


def test_a_user_with_many_slow_receivers_takes_at_most_its_share(
    ctx: AppContext, deliverer: Callable[[], Deliverer]
) -> None:
    """User A's callbacks to eight receivers, each taking 0.8 s, go out at most
    MAX_SENDS_PER_USER at a time; user B's, queued meanwhile, does not wait for them."""
    user_b, _ = create_token(ctx)
    delay_s = 0.8
    with ExitStack() as stack:
        slow = [stack.enter_context(Receiver(delay_s=delay_s)) for _ in range(8)]
        fast = stack.enter_context(Receiver())
        for hook in slow:
            queue(ctx, 1, f"{hook.url}/cb")
        deliverer()
        assert slow[0].wait_for_count(1, timeout_s=10)
        queued_at = time.time()
        queue(ctx, user_b.id, f"{fast.url}/cb")
        Deliverer.wake_all()
        assert fast.wait_for_count(1, timeout_s=10)
        waited_s = fast.requests[0].received_at_s - queued_at
        for hook in slow:
            assert hook.wait_for_count(1, timeout_s=10)
        sent = [r for hook in slow for r in hook.requests]
    assert waited_s < 0.5, f"user B's callback waited {waited_s:.2f}s"
    assert most_at_once(sent, delay_s) == MAX_SENDS_PER_USER
