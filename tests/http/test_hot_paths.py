"""The hot paths' statement budgets, counted at the driver on SQLite and PostgreSQL: a poll of
GET /tasks/{taskId} is one statement (two when it builds a SUCCEEDED task's view), POST
/gen3/video one read and one write transaction of four."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import LiveServer, start_server
from tests.statements import Statements, counted
from vidmorph.config import Settings
from vidmorph.domain.ids import parse_id
from vidmorph.domain.states import TaskStatus

#: the line snapshot's own read (store.queue), at most once a second, not part of a request
_SNAPSHOT = "SELECT tasks.status, tasks.priority, tasks.created_at, tasks.uuid"


@pytest.fixture
def live(
    either_database: dict[str, Any], make_settings: Callable[..., Settings]
) -> Iterator[LiveServer]:
    with start_server(make_settings(workers=0, **either_database)) as server:
        yield server


def requests_work(seen: Statements, start: int) -> tuple[list[str], int]:
    """The statements since `start`, less the snapshot's, and how many snapshot reads."""
    new = Statements(seen[start:])
    work = new.work()
    return [s for s in work if not s.startswith(_SNAPSHOT)], len(work) - len(
        [s for s in work if not s.startswith(_SNAPSHOT)]
    )


def test_a_poll_is_one_statement_and_a_finished_task_two(live: LiveServer, tmp_path: Path) -> None:
    asset = live.upload_video(tmp_path, seconds=1)
    pending = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    done = live.create({"assetId": asset["assetId"], "text_prompt": "rain"}).json()
    done_uuid = parse_id(done["taskId"], "task").uuid  # type: ignore[union-attr]
    assert live.ctx.tasks.claim(done_uuid, "w", 30) is not None
    assert live.ctx.tasks.succeed(done_uuid, "w", [])
    with counted(live.ctx.db) as seen:
        for task, budget in ((pending, 1), (done, 2)):
            url = f"{live.api}/tasks/{task['taskId']}"
            assert live.client.get(url).status_code == 200  # warm: a pooled connection again
            per_poll = []
            for n in range(15):
                if n == 0:
                    live.ctx.views.clear()  # this poll builds its answer
                start = len(seen)
                body = live.client.get(url).json()
                work, snapshots = requests_work(seen, start)
                per_poll.append(len(work))
                assert len(work) <= budget, work
                assert snapshots <= 1
            # A poll that builds the view reads the task (and a finished task's artifacts); a
            # poll that finds the row unchanged reuses the body, artifacts and all.
            assert per_poll[0] == budget
            assert 1 in per_poll, per_poll
            if task is pending:
                assert body["status"] == "PENDING" and body["placeInLine"] == 1
            else:
                assert body["status"] == TaskStatus.SUCCEEDED.value


def test_an_admission_is_one_read_and_one_transaction_of_four(
    live: LiveServer, tmp_path: Path
) -> None:
    asset = live.upload_video(tmp_path, seconds=1)
    with counted(live.ctx.db) as seen:
        for n in range(8):
            start = len(seen)
            resp = live.create({"assetId": asset["assetId"], "text_prompt": f"street {n}"})
            assert resp.status_code == 200, resp.text
            work, _ = requests_work(seen, start)
            transactions = Statements(seen[start:]).transactions()
            if n == 0:
                continue  # the first on each new connection (token check, pool) is not the rule
            assert len(work) == 5, work  # the asset with its account, then the transaction
            if live.ctx.db.is_sqlite:  # PostgreSQL's BEGIN is implicit: not on the wire
                assert [len(t) for t in transactions] == [4], transactions
            assert (
                live.client.delete(f"{live.api}/tasks/{resp.json()['taskId']}").status_code == 204
            )
    # The reserved credits as the admission left them: the first task's (kept) and this one's.
    assert resp.json()["features"]["numPlanCredits_used"] == 20
