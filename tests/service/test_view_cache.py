"""The poll's cache (service.view_cache): a body is reused only while its row is unchanged, so
every change shows on the next poll; bounded; tenant-scoped. Through a live server on SQLite and
PostgreSQL, and the cache on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import LiveServer, start_server
from tests.videos import make_video
from vidmorph.config import Settings
from vidmorph.domain.ids import new_uuid, parse_id
from vidmorph.service.accounts import create_token
from vidmorph.service.view_cache import ViewCache


@pytest.fixture
def live(
    either_database: dict[str, Any], make_settings: Callable[..., Settings]
) -> Iterator[LiveServer]:
    with start_server(make_settings(workers=0, **either_database)) as server:
        # Reused for a minute, not a second: what shows a change here is the row, not the clock.
        server.ctx.views.reuse_s = 60.0
        yield server


def _uuid(task: dict[str, Any]) -> str:
    parsed = parse_id(task["taskId"], "task")
    assert parsed is not None
    return parsed.uuid


def _poll(live: LiveServer, task: dict[str, Any]) -> dict[str, Any]:
    resp = live.client.get(f"{live.api}/tasks/{task['taskId']}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_an_unchanged_row_reuses_the_body_and_every_change_shows_at_once(
    live: LiveServer, tmp_path: Path
) -> None:
    asset = live.upload_video(tmp_path, seconds=1)
    task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    views = live.ctx.views
    first = live.client.get(f"{live.api}/tasks/{task['taskId']}")
    hits = views.hits
    again = live.client.get(f"{live.api}/tasks/{task['taskId']}")
    assert views.hits == hits + 1
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert first.json()["status"] == "PENDING"

    uuid = _uuid(task)
    assert live.ctx.tasks.claim(uuid, "w", 30) is not None
    running = _poll(live, task)
    assert running["status"] == "RUNNING" and running["placeInLine"] is None
    assert live.ctx.tasks.set_progress(uuid, "w", 0.5, "half")
    assert _poll(live, task)["progressRatio"] == "0.5"
    # The account's figures are part of the row too: another admission spends credits.
    used = _poll(live, task)["features"]["numPlanCredits_used"]
    assert live.create({"assetId": asset["assetId"], "text_prompt": "rain"}).status_code == 200
    assert _poll(live, task)["features"]["numPlanCredits_used"] > used

    assert live.ctx.tasks.succeed(uuid, "w", [])
    done = _poll(live, task)
    assert done["status"] == "SUCCEEDED" and done["progressRatio"] == "1"
    assert live.client.delete(f"{live.api}/tasks/{task['taskId']}").status_code == 204
    assert live.client.get(f"{live.api}/tasks/{task['taskId']}").status_code == 404


def test_a_pending_tasks_place_follows_the_line(live: LiveServer, tmp_path: Path) -> None:
    # The task ahead belongs to another account, so cancelling it (and refunding its credits)
    # changes none of the rows the task behind is read from: only the line snapshot moves.
    assert live.client.post(f"{live.api}/accounts/ahead@x.com", json={"maxJobs": 2}).is_success
    theirs = live.upload(make_video(tmp_path / "ahead.mp4", seconds=1), email="ahead@x.com")
    ahead = live.create({"assetId": theirs["assetId"], "text_prompt": "night"}).json()
    mine = live.ctx.settings.default_email
    asset = live.upload(make_video(tmp_path / "behind.mp4", seconds=1), email=mine)
    behind = live.create({"assetId": asset["assetId"], "text_prompt": "rain"}).json()
    assert _poll(live, behind)["placeInLine"] == 2
    hits = live.ctx.views.hits
    assert _poll(live, behind)["placeInLine"] == 2
    assert live.ctx.views.hits == hits + 1
    assert live.client.delete(f"{live.api}/tasks/{ahead['taskId']}").status_code == 204
    assert _poll(live, behind)["placeInLine"] == 1


def test_another_users_poll_is_404_while_the_owners_view_is_cached(
    live: LiveServer, tmp_path: Path
) -> None:
    asset = live.upload_video(tmp_path, seconds=1)
    task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    _poll(live, task)
    _poll(live, task)
    user, token = create_token(live.ctx)
    forged = task["taskId"].replace("user:1-", f"user:{user.id}-")
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as intruder:
        for task_id in (task["taskId"], forged):
            resp = intruder.get(f"{live.api}/tasks/{task_id}")
            assert resp.status_code == 404
            assert resp.json()["code"] == 404


def test_a_body_is_reused_for_an_equal_row_until_it_is_older_than_reuse_s() -> None:
    views = ViewCache(reuse_s=0.2)
    line = object()
    views.put("a", (1, "x", {"k": 1}), None, b"one")
    assert views.get("a", (1, "x", {"k": 1}), lambda: line) == b"one"
    assert views.get("a", (1, "x", {"k": 2}), lambda: line) is None  # a value changed
    assert views.get("b", (1, "x", {"k": 1}), lambda: line) is None  # another key
    time.sleep(0.25)
    assert views.get("a", (1, "x", {"k": 1}), lambda: line) is None
    # A PENDING task's body holds only while its line snapshot is the current one.
    views.put("p", (2,), line, b"pending")
    assert views.get("p", (2,), lambda: line) == b"pending"
    assert views.get("p", (2,), object) is None


def test_the_cache_is_bounded_and_drops_the_oldest_first() -> None:
    views = ViewCache(max_entries=3)
    for n in range(5):
        views.put(n, (n,), None, b"%d" % n)
    assert len(views) == 3
    assert views.get(0, (0,), object) is None and views.get(1, (1,), object) is None
    views.put(2, (2,), None, b"2 again")  # refreshed: now the newest
    views.put(5, (5,), None, b"5")
    assert views.get(3, (3,), object) is None
    assert views.get(2, (2,), object) == b"2 again" and views.get(5, (5,), object) == b"5"


def test_polls_that_miss_together_share_one_build_and_a_leaving_one_cancels_nothing() -> None:
    views = ViewCache()
    started: list[int] = []

    async def build() -> bytes:
        started.append(1)
        n = len(started)
        await asyncio.sleep(0.05)
        return b"built %d" % n

    async def polls() -> list[object]:
        same = [asyncio.ensure_future(views.build_once("t", (1,), build)) for _ in range(10)]
        other_row = asyncio.ensure_future(views.build_once("t", (2,), build))
        await asyncio.sleep(0.01)
        same[0].cancel()  # the first poller's client leaves: the build it started goes on
        return await asyncio.gather(*same, other_row, return_exceptions=True)

    results = asyncio.run(polls())
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1:10] == [b"built 1"] * 9  # one build for the ten polls of row (1,)
    assert results[10] == b"built 2"  # a changed row is built on its own
    assert views.builds == 2 and len(started) == 2


def test_runways_poll_has_its_own_answer_and_shows_each_change_at_once(
    live: LiveServer, tmp_path: Path
) -> None:
    asset = live.upload_video(tmp_path, seconds=1)
    task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    uuid = _uuid(task)
    runway = f"{live.base_url}/v1/tasks/{uuid}"
    headers = {"X-Runway-Version": "2024-11-06"}

    def runway_poll() -> dict[str, Any]:
        resp = live.client.get(runway, headers=headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    assert _poll(live, task)["taskId"] == task["taskId"]  # useapi's answer is cached first
    first = runway_poll()
    assert first == {
        "id": uuid,
        "status": "PENDING",
        "createdAt": first["createdAt"],
        "estimatedCost": first["estimatedCost"],
    }
    hits = live.ctx.views.hits
    assert runway_poll() == first and live.ctx.views.hits == hits + 1
    assert _poll(live, task)["status"] == "PENDING"  # each surface keeps its own shape

    assert live.ctx.tasks.claim(uuid, "w", 30) is not None
    assert live.ctx.tasks.set_progress(uuid, "w", 0.25, None)
    assert runway_poll()["progress"] == 0.25
    assert live.ctx.tasks.succeed(uuid, "w", [])
    done = runway_poll()
    assert done["status"] == "SUCCEEDED" and done["output"] == []
    assert (
        live.client.get(f"{live.base_url}/v1/tasks/{new_uuid()}", headers=headers).status_code
        == 404
    )
