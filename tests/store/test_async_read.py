"""PostgreSQL's poll reads in the event loop (store.async_read, store.batched): the polls of one
turn of the loop are one statement and each gets its own task's row; another user's task and a
missing one are None; a dropped connection is read again on another; an unreachable database
fails every waiting poll with a 503, not a hang."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text

from tests.harness import LiveServer, start_server
from tests.statements import counted
from vidmorph import errors
from vidmorph.config import Settings
from vidmorph.domain.ids import new_uuid, parse_id
from vidmorph.store.async_read import APPLICATION_NAME, AsyncReads
from vidmorph.store.batched import Batched
from vidmorph.store.db import Database
from vidmorph.store.tasks import TaskStore


@pytest.fixture
def live(make_settings: Callable[..., Settings], postgres_url: str) -> Iterator[LiveServer]:
    with start_server(make_settings(database_url=postgres_url, workers=0)) as server:
        yield server


T = TypeVar("T")


@pytest.fixture
def store(postgres_url: str) -> Iterator[TaskStore]:
    """The task store on a Database of its own (its own async pool), closed afterwards."""
    db = Database(postgres_url)
    yield TaskStore(db)
    db.close()


def run_then_close(reads: AsyncReads | None, work: Callable[[], Awaitable[T]]) -> T:
    """`work()` in a new event loop, then `reads`' pool closed in that same loop (a pool is
    bound to the loop it opened in)."""
    assert reads is not None

    async def main() -> T:
        try:
            return await work()
        finally:
            await reads.aclose()

    return asyncio.run(main())


def _tasks(live: LiveServer, tmp_path: Path, n: int) -> list[str]:
    asset = live.upload_video(tmp_path, seconds=1)
    uuids = []
    for i in range(n):
        resp = live.create({"assetId": asset["assetId"], "text_prompt": f"street {i}"})
        parsed = parse_id(resp.json()["taskId"], "task")
        assert parsed is not None
        uuids.append(parsed.uuid)
    return uuids


def test_the_polls_of_one_turn_are_one_statement_each_with_its_own_row(
    live: LiveServer, tmp_path: Path, store: TaskStore
) -> None:
    uuids = _tasks(live, tmp_path, 4)

    async def polls() -> list[tuple[object, ...] | None]:
        asked = [store.view_row_async(u, 1) for u in uuids]
        asked += [store.view_row_async(uuids[0], 2), store.view_row_async(new_uuid(), 1)]
        return await asyncio.gather(*asked)

    with counted(store.db) as seen:
        rows = run_then_close(store.db.async_reads, polls)
    assert len(seen.work()) == 1, seen.work()  # six polls, one statement
    assert [None if r is None else r[0] for r in rows[:4]] == uuids
    assert rows[:4] == [store.view_row(u, 1) for u in uuids]  # the sync read's very rows
    assert rows[4] is None  # another user's task: as if absent
    assert rows[5] is None
    assert store.view_of(rows[0])[0].uuid == uuids[0]  # type: ignore[arg-type]


def test_a_dropped_connection_is_read_again_on_another(
    live: LiveServer, tmp_path: Path, postgres_url: str, store: TaskStore
) -> None:
    (uuid,) = _tasks(live, tmp_path, 1)
    admin = Database(postgres_url)

    async def poll_after_a_drop() -> tuple[object, ...] | None:
        assert await store.view_row_async(uuid, 1) is not None  # opens the pool
        with admin.write() as conn:  # PostgreSQL ends every session of the pool
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            ).scalar_one()
        assert ended >= 1
        return await store.view_row_async(uuid, 1)

    try:
        row = run_then_close(store.db.async_reads, poll_after_a_drop)
        assert row is not None and row[0] == uuid
    finally:
        admin.close()


def test_an_unreachable_database_fails_every_waiting_poll_with_503(
    postgres_url: str, store: TaskStore
) -> None:
    gone = postgres_url.rsplit("/", 1)[0] + "/vidmorph_no_such_database"
    reads = AsyncReads(gone, 2, wait_s=0.5)  # the store's statements, on a pool that cannot connect
    batched = Batched(reads, lambda: store.sql["view_many"], lambda row: row[0])

    async def polls() -> list[object]:
        asked = (batched.get(new_uuid()) for _ in range(5))
        return await asyncio.wait_for(asyncio.gather(*asked, return_exceptions=True), 30)

    results = run_then_close(reads, polls)
    assert len(results) == 5
    assert all(isinstance(r, errors.ServiceUnavailable) for r in results), results
    assert batched.reads == 1 and batched.asked == 5


def test_a_cancelled_poll_leaves_the_others_their_rows(
    live: LiveServer, tmp_path: Path, store: TaskStore
) -> None:
    uuids = _tasks(live, tmp_path, 3)

    async def polls() -> list[object]:
        asked = [asyncio.ensure_future(store.view_row_async(u, 1)) for u in uuids]
        await asyncio.sleep(0)  # all three are waiting on the one read
        asked[1].cancel()  # its client went away
        return await asyncio.gather(*asked, return_exceptions=True)

    first, cancelled, last = run_then_close(store.db.async_reads, polls)
    assert isinstance(cancelled, asyncio.CancelledError)
    assert isinstance(first, tuple) and first[0] == uuids[0]
    assert isinstance(last, tuple) and last[0] == uuids[2]
