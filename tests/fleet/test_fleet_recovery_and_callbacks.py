"""Several API processes on one database: recovery runs in one of them at a time (the sweeper's
leader lease), a lost callback is queued once, and callbacks go out once each, in order per
task, with one tenant's slow receiver unable to hold up another tenant's callback.

Each "process" is its own context (`build_context`: its own engine and connection pool) on the
same database, with its own Sweeper or Deliverer threads, as `vidmorph serve` builds them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.contracts.tasks import EMAIL, new_task
from tests.receiver import Receiver, most_at_once
from tests.services import wait_for
from tests.wire import read_message
from vidmorph.config import Settings
from vidmorph.container import build_context
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.states import TaskStatus
from vidmorph.service.accounts import create_token, ensure_default_setup
from vidmorph.service.context import AppContext
from vidmorph.service.notify import MAX_SENDS_PER_TARGET, Deliverer
from vidmorph.service.sweeper import LEASE_NAME, Sweeper
from vidmorph.store.tables import deliveries, leases
from vidmorph.store.tables import tasks as tasks_table

#: every sweeper round; the leader lease is then 3 s (Sweeper.lease_s)
RECOVER_INTERVAL_S = 1.0


NodeFactory = Callable[..., AppContext]


@pytest.fixture
def node(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[NodeFactory]:
    """`node(database_url, **settings)`: the context one more API process would build, with a
    data directory of its own; every one is closed after the test."""
    made: list[AppContext] = []

    def build(database_url: str, **settings: object) -> AppContext:
        values: dict[str, object] = {"recover_interval_s": RECOVER_INTERVAL_S, **settings}
        ctx = build_context(
            make_settings(
                database_url=database_url, data_dir=tmp_path / f"node{len(made)}", **values
            )
        )
        made.append(ctx)
        return ctx

    yield build
    for ctx in made:
        ctx.db.close()


@pytest.fixture
def running() -> Iterator[Callable[[Sweeper | Deliverer], Sweeper | Deliverer]]:
    """Start a Sweeper or Deliverer now and close it after the test (if the test did not)."""
    started: list[Sweeper | Deliverer] = []

    def start(thing: Sweeper | Deliverer) -> Sweeper | Deliverer:
        thing.start()
        started.append(thing)
        return thing

    yield start
    for thing in reversed(started):
        thing.close()


def lease_owner(ctx: AppContext) -> str | None:
    with ctx.db.read() as conn:
        owner: str | None = conn.execute(
            select(leases.c.owner).where(leases.c.name == LEASE_NAME)
        ).scalar_one_or_none()
    return owner


# -- the sweeper's leader ------------------------------------------------------------------


def test_one_sweeper_leads_and_the_other_takes_over_once_the_leader_stops_renewing(
    database_url: str, node: NodeFactory
) -> None:
    """Two processes' sweepers, driven round by round: the first to ask leads for as long as it
    renews, well past one lease; when it stops (a process killed: no release, no more rounds)
    the other leads as soon as the lease lapses, not before and not much after."""
    a = Sweeper(node(database_url), "node-a")
    b = Sweeper(node(database_url), "node-b")
    lease_s = a.lease_s
    assert lease_s == pytest.approx(3 * RECOVER_INTERVAL_S)
    assert a.sweep_once()
    until = time.monotonic() + lease_s * 1.5
    while time.monotonic() < until:
        last_renewal = time.monotonic()
        assert a.sweep_once(), "the leader lost a lease it kept renewing"
        assert not b.sweep_once(), "two sweepers led at once"
        time.sleep(0.2)
    # `a` is dead from here on: it never sweeps or releases again.
    deadline = last_renewal + lease_s * 2
    while not b.sweep_once():
        assert time.monotonic() < deadline, "nobody took over the dead leader's lease"
        time.sleep(0.05)
    took_over_after_s = time.monotonic() - last_renewal
    assert took_over_after_s >= lease_s - 0.1, "the lease was taken while it was still held"
    assert b.leading and lease_owner(b.ctx) == "node-b"
    assert not a.sweep_once(), "the dead leader came back while the new one renews"


def test_a_sweeper_that_shuts_down_hands_the_lead_over_at_once(
    database_url: str, node: NodeFactory, running: Callable[[Sweeper], Sweeper]
) -> None:
    """Both sweepers running their own threads: exactly one leads at every moment, the same one
    throughout; when it closes (releasing the lease) the other leads from its next round,
    without waiting for the lease to lapse."""
    sweepers = [
        running(Sweeper(node(database_url), "node-a")),
        running(Sweeper(node(database_url), "node-b")),
    ]
    wait_for(lambda: any(s.leading for s in sweepers), 10, "a sweeper to lead")
    leader = next(s for s in sweepers if s.leading)
    other = next(s for s in sweepers if s is not leader)
    until = time.monotonic() + leader.lease_s * 1.5
    while time.monotonic() < until:
        assert [s.leading for s in sweepers].count(True) == 1
        assert leader.leading and lease_owner(leader.ctx) == leader.owner
        time.sleep(0.1)
    closed_at = time.monotonic()
    leader.close()
    wait_for(lambda: other.leading, leader.lease_s, "the other sweeper to lead")
    assert time.monotonic() - closed_at < leader.lease_s - RECOVER_INTERVAL_S / 2
    assert lease_owner(other.ctx) == other.owner


def lost_callback_tasks(ctx: AppContext, reply_url: str, count: int) -> list[str]:
    """`count` tasks that finished a minute ago with a replyUrl and no terminal delivery row,
    as if each process died between finishing the task and queueing its callback."""
    ensure_default_setup(ctx)
    ctx.accounts.upsert(1, EMAIL, max_jobs=3, plan="unlimited", num_plan_credits=0)
    made = []
    for _ in range(count):
        task = replace(new_task(credits=0), reply_url=reply_url)
        ctx.tasks.admit(task, max_jobs=3, max_queue_depth=100)
        assert ctx.tasks.transition(task.uuid, TaskStatus.FAILED, error={"reason": "X"})
        made.append(task.uuid)
    with ctx.db.write() as conn:
        conn.execute(
            update(tasks_table)
            .where(tasks_table.c.uuid.in_(made))
            .values(finished_at=utcnow() - timedelta(minutes=1))
        )
    assert sorted(ctx.tasks.finished_without_callback(utcnow())) == sorted(made)
    return made


def terminal_rows(ctx: AppContext) -> Counter[str]:
    with ctx.db.read() as conn:
        uuids = conn.execute(
            select(deliveries.c.task_uuid).where(deliveries.c.terminal.is_(True))
        ).scalars()
        return Counter(uuids)


def test_a_lost_callback_is_queued_once_with_two_sweepers_running(
    database_url: str, node: NodeFactory, running: Callable[[Sweeper], Sweeper]
) -> None:
    """Thirty finished tasks lost their final callback; both processes' sweepers start at the
    same moment and keep running for several rounds: each task gets exactly one terminal
    delivery row (when both swept, each queued its own copy)."""
    a, b = node(database_url), node(database_url)
    lost = lost_callback_tasks(a, "http://127.0.0.1:9/cb", 30)
    sweepers = [running(Sweeper(a, "node-a")), running(Sweeper(b, "node-b"))]
    wait_for(lambda: set(terminal_rows(a)) == set(lost), 20, "the lost callbacks to be queued")
    # Further rounds of both sweepers: neither queues any again.
    rounds_at = time.monotonic()
    time.sleep(RECOVER_INTERVAL_S * 3)
    assert time.monotonic() - rounds_at >= RECOVER_INTERVAL_S * 3
    assert terminal_rows(a) == Counter({uuid: 1 for uuid in lost})
    assert [s.leading for s in sweepers].count(True) == 1
    for uuid in lost:
        (row,) = a.deliveries.of_task(uuid)
        assert row["terminal"] and row["state"] == "pending"


# -- callback delivery from two processes ---------------------------------------------------


def queue_callbacks(
    ctx: AppContext, user_id: int, url: str, tasks: int, per_task: int
) -> dict[str, list[str]]:
    """`per_task` deliveries for each of `tasks` tasks (progress ones, then the terminal one),
    queued before any sender runs; returns the webhook-ids each task's deliveries carry, in
    the order they were queued."""
    expected: dict[str, list[str]] = {}
    for _ in range(tasks):
        uuid = ids.new_uuid()
        expected[uuid] = []
        for step in range(per_task):
            body = json.dumps({"id": uuid, "step": step}).encode()
            delivery_id = ctx.deliveries.enqueue(
                uuid, user_id, url, body, terminal=step == per_task - 1, ttl_s=600
            )
            expected[uuid].append(f"msg_{uuid}_{delivery_id}")
    return expected


def all_sent(ctx: AppContext, expected: dict[str, list[str]]) -> bool:
    return all(
        row["state"] != "pending" for uuid in expected for row in ctx.deliveries.of_task(uuid)
    )


def test_two_processes_send_every_callback_exactly_once_and_in_order(
    postgres_url: str, node: NodeFactory, running: Callable[[Deliverer], Deliverer]
) -> None:
    """A receiver that takes 1 s to answer, thirty callbacks queued (fifteen tasks, two each) and
    a sender in each of two processes: every delivery arrives once (its webhook-id once), a
    task's second callback only after its first was answered, both processes send at once,
    and never more than MAX_SENDS_PER_TARGET each to the one receiver."""
    delay_s = 1.0
    a = node(postgres_url, callback_timeout_s=3.0)
    b = node(postgres_url, callback_timeout_s=3.0)
    ensure_default_setup(a)
    with Receiver(delay_s=delay_s) as hook:
        expected = queue_callbacks(a, 1, f"{hook.url}/cb", tasks=15, per_task=2)
        total = sum(len(v) for v in expected.values())
        running(Deliverer(a))
        running(Deliverer(b))
        wait_for(lambda: all_sent(a, expected), 40, "every callback to be sent", step_s=0.25)
        requests = hook.requests
    seen = Counter(r.headers["webhook-id"] for r in requests)
    twice = {msg: n for msg, n in seen.items() if n > 1}
    assert twice == {}, f"{len(twice)} of {total} callbacks went out more than once"
    assert set(seen) == {msg for msgs in expected.values() for msg in msgs}
    for uuid in expected:
        assert [(r["state"], r["attempts"]) for r in a.deliveries.of_task(uuid)] == [
            ("delivered", 1),
            ("delivered", 1),
        ]
    arrived = {r.headers["webhook-id"]: r.received_at_s for r in requests}
    for uuid, (first, second) in expected.items():
        gap_s = arrived[second] - arrived[first]
        assert gap_s >= delay_s * 0.9, f"task {uuid}: callback 2 went out {gap_s:.2f}s after 1"
    at_once = most_at_once(requests, delay_s)
    assert MAX_SENDS_PER_TARGET < at_once <= 2 * MAX_SENDS_PER_TARGET, at_once


def test_a_slow_receiver_does_not_delay_another_users_callback(
    postgres_url: str, node: NodeFactory, running: Callable[[Deliverer], Deliverer]
) -> None:
    """User A's receiver takes 2 s per callback and has thirty waiting; user B's callback,
    queued while A's are being sent, arrives within a couple of seconds on either process."""
    a = node(postgres_url, callback_timeout_s=5.0)
    b = node(postgres_url, callback_timeout_s=5.0)
    ensure_default_setup(a)
    user_b, _ = create_token(b)
    with Receiver(delay_s=2.0) as slow, Receiver() as fast:
        queue_callbacks(a, 1, f"{slow.url}/cb", tasks=30, per_task=1)
        running(Deliverer(a))
        running(Deliverer(b))
        assert slow.wait_for_count(2 * MAX_SENDS_PER_TARGET, timeout_s=15)
        queued_at = time.time()
        queue_callbacks(b, user_b.id, f"{fast.url}/cb", tasks=1, per_task=1)
        Deliverer.wake_all()  # what queueing a task's change does (notify.task_changed)
        assert fast.wait_for_count(1, timeout_s=10), "user B's callback never arrived"
        waited_s = fast.requests[0].received_at_s - queued_at
        still_sending = len(slow.requests)
    assert waited_s < 2.0, f"user B's callback waited {waited_s:.1f}s behind user A's"
    assert still_sending < 30, "user A's callbacks were all sent first"


class TrickleReceiver:
    """A loopback HTTP receiver that reads a request whole, then answers 200 one byte at a
    time, `byte_every_s` apart: each read of the sender's finishes well inside its timeout, the
    send as a whole takes far longer."""

    RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

    def __init__(self, byte_every_s: float) -> None:
        self.byte_every_s = byte_every_s
        self.ids: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> TrickleReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            message = read_message(conn)
            if message is None:
                return
            _, headers, _ = message
            with self._lock:
                self.ids.append(headers["webhook-id"])
            for byte in self.RESPONSE:
                if self._stop.wait(self.byte_every_s):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return


def test_a_send_outlasting_its_hold_is_not_sent_again_by_the_other_process(
    postgres_url: str, node: NodeFactory, running: Callable[[Deliverer], Deliverer]
) -> None:
    """A receiver that answers a byte every 0.2 s keeps one send going ~12 s, longer than the
    7 s the claim first holds the delivery for (each read is inside the 0.5 s timeout, so the
    sender never gives up): the sending process keeps its hold, and the other never sends the
    same callback."""
    a = node(postgres_url, callback_timeout_s=0.5)
    b = node(postgres_url, callback_timeout_s=0.5)
    ensure_default_setup(a)
    with TrickleReceiver(byte_every_s=0.2) as hook:
        expected = queue_callbacks(a, 1, f"{hook.url}/cb", tasks=1, per_task=1)
        deliverers = [running(Deliverer(a)), running(Deliverer(b))]
        send_s = len(TrickleReceiver.RESPONSE) * hook.byte_every_s
        assert send_s > deliverers[0].hold_s + 3
        wait_for(lambda: all_sent(a, expected), send_s + 20, "the slow send to finish")
        ids = list(hook.ids)
    assert ids == [msg for msgs in expected.values() for msg in msgs]
    (row,) = a.deliveries.of_task(next(iter(expected)))
    assert (row["state"], row["attempts"]) == ("delivered", 1)
