"""Task life over HTTP: progress, placeInLine, list filters, cancel, delete, scheduler."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from tests.harness import LiveServer, start_server
from tests.videos import make_video
from vidmorph.config import Settings
from vidmorph.domain import ids

SLOW = "tests.engines.fixtures:slow"


def test_running_task_reports_string_progress_then_cancel_stops_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine=SLOW)) as live:
        asset = live.upload_video(tmp_path, seconds=2)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        tid = task["taskId"]
        deadline = time.monotonic() + 30
        body = live.wait_task(tid, {"RUNNING"})
        while float(body["progressRatio"] or 0) <= 0.15 and time.monotonic() < deadline:
            body = live.client.get(f"{live.api}/tasks/{tid}").json()
        assert body["status"] == "RUNNING" and isinstance(body["progressRatio"], str)
        assert body["progressText"]
        assert live.client.delete(f"{live.api}/tasks/{tid}").status_code == 204
        cancelled = live.client.get(f"{live.api}/tasks/{tid}").json()
        assert cancelled["status"] == "CANCELLED" and cancelled["artifacts"] == []
        frozen = cancelled["progressRatio"]
        time.sleep(0.6)  # several frame batches: the engine must have stopped
        after = live.client.get(f"{live.api}/tasks/{tid}").json()
        assert after["status"] == "CANCELLED" and after["progressRatio"] == frozen
        assert live.client.get(f"{live.api}/features/").json()["used"]["numPlanCredits"] == 0
        # the worker is free again: the next task runs to the end
        nxt = live.create({"assetId": asset["assetId"], "text_prompt": "x", "seconds": 1}).json()
        assert live.wait_task(nxt["taskId"], {"SUCCEEDED", "FAILED"})["status"] == "SUCCEEDED"


def test_pending_tasks_show_place_in_line_and_can_be_cancelled(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        tasks = [
            live.create({"assetId": asset["assetId"], "text_prompt": f"p{i}"}).json()
            for i in range(3)
        ]
        places = [
            live.client.get(f"{live.api}/tasks/{t['taskId']}").json()["placeInLine"] for t in tasks
        ]
        assert places == [1, 2, 3]
        sched = live.client.get(f"{live.api}/scheduler/").json()
        assert [s["taskId"] for s in sched] == [t["taskId"] for t in tasks]
        assert live.client.delete(f"{live.api}/scheduler/{tasks[0]['taskId']}").status_code == 204
        first = live.client.get(f"{live.api}/tasks/{tasks[0]['taskId']}").json()
        assert first["status"] == "CANCELLED"
        assert live.client.get(f"{live.api}/tasks/{tasks[1]['taskId']}").json()["placeInLine"] == 1
        again = live.client.delete(f"{live.api}/scheduler/{tasks[0]['taskId']}")
        assert again.status_code == 404 and again.json()["code"] == 404
        # `email` narrows the list to one account's tasks
        live.client.post(f"{live.api}/accounts/b@x.com", json={"maxJobs": 2})
        other = live.upload(make_video(tmp_path / "b.mp4", seconds=1), email="b@x.com")
        theirs = live.create({"assetId": other["assetId"], "text_prompt": "b"}).json()
        everyone = [s["taskId"] for s in live.client.get(f"{live.api}/scheduler/").json()]
        assert everyone == [t["taskId"] for t in tasks[1:]] + [theirs["taskId"]]
        only_b = live.client.get(f"{live.api}/scheduler/?email=b@x.com").json()
        assert [s["taskId"] for s in only_b] == [theirs["taskId"]]
        unknown = live.client.get(f"{live.api}/scheduler/?email=nobody@x.com")
        assert unknown.status_code == 404


def test_list_filters_by_status_and_rejects_unknown_ones(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    done = server.create({"assetId": asset["assetId"], "text_prompt": "sepia"}).json()
    server.wait_task(done["taskId"], {"SUCCEEDED"})
    listed = server.client.get(f"{server.api}/tasks/?offset=0&limit=10&statuses=SUCCEEDED").json()
    assert [t["taskId"] for t in listed] == [done["taskId"]]
    assert server.client.get(f"{server.api}/tasks/?statuses=PENDING,RUNNING").json() == []
    assert server.client.get(f"{server.api}/tasks/?statuses=BOGUS").status_code == 400
    repeated = f"{server.api}/tasks/?statuses=SUCCEEDED&statuses=PENDING"  # every one counts
    assert [t["taskId"] for t in server.client.get(repeated).json()] == [
        t["taskId"] for t in listed
    ]
    bad_repeat = server.client.get(f"{server.api}/tasks/?statuses=SUCCEEDED&statuses=BOGUS")
    assert bad_repeat.status_code == 400
    assert server.client.get(f"{server.api}/tasks/?limit=0").status_code == 400
    parsed = ids.parse_id(done["taskId"], "task")
    assert parsed is not None
    email = parsed.email
    mine = server.client.get(f"{server.api}/tasks/", params={"email": email}).json()
    assert [t["taskId"] for t in mine] == [done["taskId"]]
    unknown = server.client.get(f"{server.api}/tasks/", params={"email": "nobody@example.com"})
    assert unknown.status_code == 404 and unknown.json()["code"] == 404
    assert "nobody@example.com" in unknown.json()["error"]
    # with a second account, the list must be told which (useapi §1), as /assets/ must
    made = server.client.post(f"{server.api}/accounts/other@example.com", json={"maxJobs": 1})
    assert made.status_code == 200
    for path in ("tasks/", "assets/", "features/"):
        several = server.client.get(f"{server.api}/{path}")
        assert several.status_code == 400 and "email" in several.json()["error"], path
    again = server.client.get(f"{server.api}/tasks/", params={"email": email}).json()
    assert [t["taskId"] for t in again] == [done["taskId"]]
    other = server.client.get(f"{server.api}/tasks/", params={"email": "other@example.com"})
    assert other.json() == []


def test_deleting_a_finished_task_removes_it_and_its_files(
    server: LiveServer, tmp_path: Path
) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "noir"}).json()
    done = server.wait_task(task["taskId"], {"SUCCEEDED"})
    url = done["artifacts"][0]["url"]
    assert httpx.get(url).status_code == 200
    encoded = quote(task["taskId"], safe="")
    assert server.client.delete(f"{server.api}/tasks/{encoded}").status_code == 204
    assert server.client.get(f"{server.api}/tasks/{task['taskId']}").status_code == 404
    assert httpx.get(url).status_code == 404


def test_engine_failure_ends_failed_with_a_public_message(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine="tests.engines.fixtures:raises")) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "x"}).json()
        done = live.wait_task(task["taskId"], {"FAILED", "SUCCEEDED"})
        assert done["status"] == "FAILED"
        assert done["error"]["reason"].startswith("INTERNAL")
        assert "exploded" not in str(done["error"])  # no internals leak into bodies
        assert live.client.get(f"{live.api}/features/").json()["used"]["numPlanCredits"] == 0


def test_unknown_routes_and_ids_use_the_envelope(server: LiveServer) -> None:
    assert server.client.get(f"{server.api}/nope").json() == {"error": "Not found.", "code": 404}
    resp = server.client.get(f"{server.api}/tasks/not-a-task-id")
    assert resp.status_code == 404 and resp.json()["code"] == 404


def test_listed_tasks_carry_their_own_artifacts_and_sources(
    server: LiveServer, tmp_path: Path
) -> None:
    first = server.upload_video(tmp_path, seconds=1)
    second = server.upload_video(tmp_path, seconds=1, pattern="gradient")
    made = [
        server.create({"assetId": a["assetId"], "text_prompt": "noir"}).json()
        for a in (first, second)
    ]
    for task in made:
        server.wait_task(task["taskId"], {"SUCCEEDED"})
    listed = server.client.get(f"{server.api}/tasks/?statuses=SUCCEEDED").json()
    by_id = {t["taskId"]: t for t in listed}
    for task, asset in zip(made, (first, second), strict=True):
        got = by_id[task["taskId"]]
        assert [a["taskId"] for a in got["artifacts"]] == [task["taskId"]]
        assert asset["id"] in got["options"]["video_prompt"]


def test_a_wrong_method_is_a_405_in_the_envelope_with_its_allow_header(server: LiveServer) -> None:
    resp = server.client.put(f"{server.api}/features/")
    assert resp.status_code == 405
    assert resp.json() == {"error": "Method not allowed.", "code": 405}
    assert resp.headers["allow"] == "GET, HEAD"


def test_a_waiting_tasks_input_cannot_be_deleted_and_a_lost_one_fails_with_asset_invalid(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(engine=SLOW)) as live:
        first = live.upload_video(tmp_path, seconds=2)
        running = live.create({"assetId": first["assetId"], "text_prompt": "dusk"}).json()
        second = live.upload(make_video(tmp_path / "second.mp4", seconds=1))
        waiting = live.create({"assetId": second["assetId"], "text_prompt": "snow"}).json()
        assert waiting["status"] == "PENDING"  # one worker, busy with the first
        refused = live.client.delete(f"{live.api}/assets/{second['assetId']}")
        assert refused.status_code == 409 and waiting["taskId"] in refused.json()["error"]
        # its file lost all the same (a storage accident): the task fails, saying so
        kept = live.ctx.assets.get(1, second["id"])
        assert kept is not None
        live.ctx.storage.delete(kept.blob_key)
        failed = live.wait_task(waiting["taskId"], {"FAILED"}, timeout_s=60)
        assert failed["error"]["errorMessage"] == "The input asset's file is missing."
        runway = httpx.get(
            f"{live.base_url}/v1/tasks/{waiting['id']}",
            headers={"Authorization": f"Bearer {live.token}", "X-Runway-Version": "2024-11-06"},
        ).json()
        assert runway["status"] == "FAILED" and runway["failureCode"] == "ASSET.INVALID"
        live.wait_task(running["taskId"], {"SUCCEEDED"}, timeout_s=60)
