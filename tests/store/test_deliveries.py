"""DeliveryStore on SQLite and PostgreSQL: one terminal delivery per task, whoever queues it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from vidmorph.store.db import Database
from vidmorph.store.deliveries import DeliveryStore


@pytest.fixture
def store(migrated: Database) -> DeliveryStore:
    return DeliveryStore(migrated)


def rows(store: DeliveryStore, task: str) -> list[bool]:
    return [r["terminal"] for r in store.of_task(task)]


def test_a_task_gets_one_terminal_delivery_however_often_it_is_queued(
    store: DeliveryStore,
) -> None:
    enqueue: Callable[..., int] = store.enqueue
    first = enqueue("t1", 1, "http://127.0.0.1:9/cb", b"{}", terminal=True, ttl_s=60)
    assert enqueue("t1", 1, "http://127.0.0.1:9/cb", b"{}", terminal=True, ttl_s=60) == first
    enqueue("t1", 1, "http://127.0.0.1:9/cb", b"{}", terminal=False, ttl_s=60)
    enqueue("t1", 1, "http://127.0.0.1:9/cb", b"{}", terminal=False, ttl_s=60)
    assert sorted(rows(store, "t1")) == [False, False, True]
    # Another task is not affected.
    assert enqueue("t2", 1, "http://127.0.0.1:9/cb", b"{}", terminal=True, ttl_s=60) != first


def test_racing_terminal_enqueues_leave_one_row(store: DeliveryStore) -> None:
    start = threading.Barrier(8)
    ids: list[int] = []

    def race() -> None:
        start.wait()
        ids.append(store.enqueue("t3", 1, "http://127.0.0.1:9/cb", b"{}", terminal=True, ttl_s=60))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert rows(store, "t3") == [True]
