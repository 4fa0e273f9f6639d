"""Admission under concurrency: maxJobs, 429 with runningTasks, queue depth, credits, explore."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.harness import start_server
from tests.videos import make_video
from vidmorph.config import Settings
from vidmorph.service.accounts import create_token


def test_concurrent_posts_never_exceed_max_jobs(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0)) as live:  # admit only: tasks stay PENDING
        live.client.post(f"{live.api}/accounts/default@vidmorph.local", json={"maxJobs": 3})
        asset = live.upload_video(tmp_path, seconds=1)
        body = {"assetId": asset["assetId"], "text_prompt": "night", "replyRef": "x"}

        def post(_: int) -> httpx.Response:
            with httpx.Client(headers={"Authorization": f"Bearer {live.token}"}) as c:
                return c.post(f"{live.api}/gen3/video", json=body, timeout=30)

        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(post, range(24)))
        codes = sorted(r.status_code for r in answers)
        assert codes.count(200) == 3 and codes.count(429) == 21
        busy = next(r.json() for r in answers if r.status_code == 429)
        email = "default@vidmorph.local"
        assert busy["error"] == f"Account {email} is busy executing 3 tasks"
        assert busy["code"] == 429 and len(busy["runningTasks"][email]) == 3
        running = busy["runningTasks"][email][0]
        assert set(running) == {"email", "taskId", "id", "replyUrl", "replyRef"}
        admitted = {r.json()["taskId"] for r in answers if r.status_code == 200}
        assert {t["taskId"] for t in busy["runningTasks"][email]} == admitted
        per_call = live.create({**body, "maxJobs": 4})
        assert per_call.status_code == 200  # maxJobs in the body overrides the account's cap
        lower = live.create({**body, "maxJobs": 1})
        assert lower.status_code == 429  # the message counts what runs, and names the limit
        assert lower.json()["error"] == f"Account {email} is busy executing 4 tasks (maxJobs 1)"
        assert len(lower.json()["runningTasks"][email]) == 4


def test_global_queue_depth_gives_the_second_429(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0, max_queue_depth=2)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        body = {"assetId": asset["assetId"], "text_prompt": "night"}
        assert [live.create(body).status_code for _ in range(2)] == [200, 200]
        resp = live.create(body)
        assert resp.status_code == 429
        assert resp.json()["error"].startswith("You have too many tasks running or pending")


def test_credits_are_reserved_released_and_412_when_short(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0, self_service_plans=True)) as live:
        live.client.post(
            f"{live.api}/accounts/default@vidmorph.local",
            json={"numPlanCredits": 25, "plan": "standard"},
        )
        asset = live.upload_video(tmp_path, seconds=2)
        body = {"assetId": asset["assetId"], "text_prompt": "night"}
        task = live.create(body).json()
        assert task["features"]["numPlanCredits_used"] == 20  # 10 credits/s x 2 s
        short = live.create(body)
        assert short.status_code == 412
        assert short.json() == {
            "error": "You do not have enough credits to run this task.",
            "code": 412,
        }
        assert live.client.delete(f"{live.api}/tasks/{task['taskId']}").status_code == 204
        assert live.client.get(f"{live.api}/features/").json()["used"]["numPlanCredits"] == 0
        assert live.create(body).status_code == 200
        explore = live.create({**body, "exploreMode": True})
        assert explore.status_code == 400 and "unlimited" in explore.json()["error"]


def test_explore_mode_is_free_and_waits_behind_others(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        relaxed = live.create(
            {"assetId": asset["assetId"], "text_prompt": "a", "exploreMode": True}
        )
        normal = live.create({"assetId": asset["assetId"], "text_prompt": "b"})
        assert relaxed.json()["features"]["numPlanCredits_used"] == 0
        assert normal.json()["features"]["numPlanCredits_used"] == 10
        assert relaxed.json()["options"]["exploreMode"] is True
        r = live.client.get(f"{live.api}/tasks/{relaxed.json()['taskId']}").json()
        n = live.client.get(f"{live.api}/tasks/{normal.json()['taskId']}").json()
        assert (n["placeInLine"], r["placeInLine"]) == (1, 2)
        assert r["estimatedTimeToStartSeconds"] >= n["estimatedTimeToStartSeconds"] >= 0


def test_one_user_holds_at_most_its_share_of_the_queue_across_accounts(
    make_settings: Callable[..., Settings], either_database: dict[str, Any], tmp_path: Path
) -> None:
    settings = make_settings(workers=0, max_user_tasks=4, **either_database)
    with start_server(settings) as live:
        assets = {}
        for email in ("a@x.com", "b@x.com"):
            made = live.client.post(f"{live.api}/accounts/{email}", json={"maxJobs": 3})
            assert made.status_code == 200
            assets[email] = live.upload(
                make_video(tmp_path / f"{email}.mp4", seconds=1), email=email
            )
        codes = [
            live.create({"assetId": assets[email]["assetId"], "text_prompt": "x"}).status_code
            for email in ("a@x.com", "b@x.com", "a@x.com", "b@x.com", "a@x.com")
        ]
        assert codes == [200, 200, 200, 200, 429]  # 4 in flight across both accounts
        refused = live.create({"assetId": assets["b@x.com"]["assetId"], "text_prompt": "x"})
        assert refused.status_code == 429 and "too many tasks" in refused.json()["error"]
        # another user is not held back
        _, other = create_token(live.ctx)
        as_other = {"Authorization": f"Bearer {other}"}
        video = make_video(tmp_path / "theirs.mp4", seconds=1).read_bytes()
        uploaded = httpx.post(
            f"{live.api}/assets/?name=t",
            content=video,
            headers={**as_other, "Content-Type": "video/mp4"},
        ).json()
        theirs = httpx.post(
            f"{live.api}/gen3/video",
            json={"assetId": uploaded["assetId"], "text_prompt": "x"},
            headers=as_other,
        )
        assert theirs.status_code == 200
        (task, *_) = live.client.get(f"{live.api}/tasks/?email=a@x.com").json()
        assert live.client.delete(f"{live.api}/tasks/{task['taskId']}").status_code == 204
        again = live.create({"assetId": assets["b@x.com"]["assetId"], "text_prompt": "x"})
        assert again.status_code == 200  # a place came free


def test_concurrent_posts_across_accounts_never_exceed_the_user_cap(
    make_settings: Callable[..., Settings], either_database: dict[str, Any], tmp_path: Path
) -> None:
    # creates racing on different accounts of one user each count the user's tasks in flight:
    # they must not all see room under the cap
    settings = make_settings(workers=0, max_user_tasks=3, **either_database)
    with start_server(settings) as live:
        emails = [f"r{n}@x.com" for n in range(6)]
        bodies = []
        for email in emails:
            made = live.client.post(f"{live.api}/accounts/{email}", json={"maxJobs": 10})
            assert made.status_code == 200
            asset = live.upload(make_video(tmp_path / f"{email}.mp4", seconds=1), email=email)
            bodies.append({"assetId": asset["assetId"], "text_prompt": "x"})

        def post(n: int) -> httpx.Response:
            with httpx.Client(headers={"Authorization": f"Bearer {live.token}"}) as c:
                return c.post(f"{live.api}/gen3/video", json=bodies[n % 6], timeout=30)

        with ThreadPoolExecutor(24) as pool:
            codes = sorted(r.status_code for r in pool.map(post, range(24)))
        assert codes.count(200) == 3 and codes.count(429) == 21
        listed = [live.client.get(f"{live.api}/tasks/?email={e}").json() for e in emails]
        assert sum(len(tasks) for tasks in listed) == 3
