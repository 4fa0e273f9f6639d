"""DeliveryStore on SQLite and PostgreSQL: one terminal delivery per task, whoever queues it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import fresh_postgres_url
from vidmorph.store.db import Database
from vidmorph.store.deliveries import DeliveryStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeliveryStore]:
    def run(url: str) -> Iterator[DeliveryStore]:
        db = Database(url)
        db.migrate()
        try:
            yield DeliveryStore(db)
        finally:
            db.close()

    if request.param == "sqlite":
        yield from run(f"sqlite:///{tmp_path / 'd.db'}")
    else:
        with fresh_postgres_url() as url:
            yield from run(url)


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
