"""GET /tasks/{taskId}/events: Server-Sent Events of a task through a real server, from the
first state to the terminal one, with the poll route's auth and tenancy."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.harness import LiveServer, start_server
from vidmorph.config import Settings
from vidmorph.service.accounts import create_token

SLOW = "tests.engines.fixtures:slow"


def read_events(client: httpx.Client, url: str, timeout_s: float = 60) -> Iterator[tuple[str, Any]]:
    """(event name, data) for each event of the stream, until the server ends it."""
    with client.stream("GET", url, timeout=timeout_s) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        name, data = "message", []
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
            elif line == "" and data:
                yield name, json.loads("\n".join(data))
                name, data = "message", []


def test_the_stream_carries_every_change_and_ends_after_the_terminal_state(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine=SLOW, events_poll_s=0.05)) as live:
        asset = live.upload_video(tmp_path, seconds=2)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        events = list(read_events(live.client, f"{live.api}/tasks/{task['taskId']}/events"))
        names = {name for name, _ in events}
        assert names == {"task"}
        statuses = [data["status"] for _, data in events]
        assert statuses[-1] == "SUCCEEDED" and "RUNNING" in statuses
        ratios = [float(data["progressRatio"]) for _, data in events if data["progressRatio"]]
        assert len(ratios) >= 3 and ratios == sorted(ratios)
        last = events[-1][1]
        assert last == live.client.get(f"{live.api}/tasks/{task['taskId']}").json() | {
            "artifacts": last["artifacts"]  # signed URLs may be minted afresh
        }
        assert last["artifacts"] and last["taskId"] == task["taskId"]
        # A finished task's stream is its one terminal event.
        again = list(read_events(live.client, f"{live.api}/tasks/{task['taskId']}/events"))
        assert [(n, d["status"]) for n, d in again] == [("task", "SUCCEEDED")]


def test_another_users_task_and_an_unknown_one_are_404_before_any_event(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    _, token = create_token(server.ctx)
    intruder = httpx.Client(headers={"Authorization": f"Bearer {token}"})
    resp = intruder.get(f"{server.api}/tasks/{task['taskId']}/events")
    assert resp.status_code == 404 and resp.json() == {"error": "Not found.", "code": 404}
    unknown = server.client.get(f"{server.api}/tasks/user:1-runwayml-nope/events")
    assert unknown.status_code == 404 and unknown.json()["code"] == 404
    anonymous = httpx.get(f"{server.api}/tasks/{task['taskId']}/events")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == 401


def test_a_cancel_ends_the_stream_with_the_cancelled_task(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine=SLOW, events_poll_s=0.05)) as live:
        asset = live.upload_video(tmp_path, seconds=5)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        url = f"{live.api}/tasks/{task['taskId']}"
        seen = []
        for name, data in read_events(live.client, f"{url}/events"):
            seen.append((name, data["status"]))
            if data["status"] == "RUNNING" and data["progressRatio"]:
                assert live.client.delete(url).status_code == 204  # cancels
        assert seen[-1] == ("task", "CANCELLED")


def test_the_stream_follows_a_task_that_another_server_runs(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # Two servers on one database: the first to start leads the sweeper and runs PENDING
    # tasks with its worker; the second only admits, and streams a task it does not run.
    run = make_settings(engine=SLOW, workers=1)
    admit = make_settings(engine=SLOW, workers=0, events_poll_s=0.05)
    with start_server(run) as runner, start_server(admit) as front:
        asset = front.upload_video(tmp_path, seconds=1)
        task = front.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        url = f"{front.api}/tasks/{task['taskId']}/events"
        statuses = [data["status"] for _, data in read_events(front.client, url)]
        assert runner.ctx.tasks.get(task["id"]) is not None
    assert statuses[0] == "PENDING" and statuses[-1] == "SUCCEEDED" and "RUNNING" in statuses


def test_a_task_deleted_between_two_looks_ends_the_stream_with_a_deleted_event(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # Polled every 2 s: the cancel and the delete both land between the first look and the next.
    with start_server(make_settings(engine=SLOW, events_poll_s=2.0)) as live:
        asset = live.upload_video(tmp_path, seconds=5)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        url = f"{live.api}/tasks/{task['taskId']}"
        events = []
        for name, data in read_events(live.client, f"{url}/events"):
            events.append((name, data))
            if len(events) == 1:
                assert live.client.delete(url).status_code == 204  # cancels
                assert live.client.delete(url).status_code == 204  # deletes
        assert events[0][0] == "task" and events[0][1]["status"] in ("PENDING", "RUNNING")
        assert events[1:] == [("deleted", {"taskId": task["taskId"]})]
        assert live.client.get(url).status_code == 404
