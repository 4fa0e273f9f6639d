"""replyUrl callbacks end to end: signed task snapshots, once at the end by default (progress
on request), retried terminal delivery."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import start_server
from tests.receiver import Receiver, RecordedRequest
from vidmorph.callbacks.signing import verify
from vidmorph.config import Settings


def test_receiver_that_fails_first_still_gets_the_signed_terminal_task(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    def terminal(reqs: list[RecordedRequest]) -> list[RecordedRequest]:
        return [r for r in reqs if r.json()["status"] == "SUCCEEDED"]

    with Receiver(status=500) as hook, start_server(make_settings()) as live:
        asset = live.upload_video(tmp_path, seconds=2)
        task = live.create(
            {
                "assetId": asset["assetId"],
                "text_prompt": "sunset",
                "replyUrl": f"{hook.url}/done",
                "replyRef": "ref-9",
            }
        ).json()
        live.wait_task(task["taskId"], {"SUCCEEDED"})
        # The receiver keeps failing: the terminal delivery is retried with backoff...
        assert hook.wait_for(lambda reqs: len(terminal(reqs)) >= 3, 20)
        first_tries = len(terminal(hook.requests))
        hook.status = 200  # ...until it finally answers 2xx, and then no more.
        deadline = time.monotonic() + 20
        while live.ctx.deliveries.of_task(task["id"])[-1]["state"] != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        final = terminal(hook.requests)
        assert len(final) > first_tries
        secret = live.ctx.users.get(1).webhook_secret  # type: ignore[union-attr]
        for req in hook.requests:
            h = req.headers
            assert verify(
                secret,
                h["webhook-id"],
                int(h["webhook-timestamp"]),
                req.body,
                h["webhook-signature"],
            )
        body = final[-1].json()
        assert body["replyRef"] == "ref-9" and body["artifacts"][0]["url"]
        assert {r.json()["status"] for r in hook.requests} == {"SUCCEEDED"}  # the contract: once
        current = live.client.get(f"{live.api}/tasks/{task['taskId']}").json()
        volatile = ("artifacts", "options", "features", "updatedAt")
        assert {k: v for k, v in body.items() if k not in volatile} == {
            k: v for k, v in current.items() if k not in volatile
        }
        time.sleep(0.5)
        assert len(terminal(hook.requests)) == len(final)


def test_deleting_a_task_stops_its_callbacks(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(callback_retry_base_s=0.2, callback_retry_max_s=0.4)
    with Receiver(status=500) as hook, start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create(
            {"assetId": asset["assetId"], "text_prompt": "dusk", "replyUrl": f"{hook.url}/cb"}
        ).json()
        live.wait_task(task["taskId"], {"SUCCEEDED"})
        assert hook.wait_for_count(2, 20)  # failing, so retried
        assert live.client.delete(f"{live.api}/tasks/{task['taskId']}").status_code == 204
        (delivery,) = live.ctx.deliveries.of_task(task["id"])
        assert delivery["state"] == "dropped"
        time.sleep(0.3)  # a send already under way may still land
        seen = len(hook.requests)
        time.sleep(1.5)  # several retry periods
        assert len(hook.requests) == seen


def test_callback_events_all_also_sends_status_changes_and_progress_in_order(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(callback_events="all", engine="tests.engines.fixtures:slow")
    with Receiver() as hook, start_server(settings) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create(
            {"assetId": asset["assetId"], "text_prompt": "x", "replyUrl": f"{hook.url}/all"}
        ).json()
        live.wait_task(task["taskId"], {"SUCCEEDED"})
        assert hook.wait_for(lambda reqs: any(r.json()["status"] == "SUCCEEDED" for r in reqs), 10)
        time.sleep(0.5)
        statuses = [r.json()["status"] for r in hook.requests]
        assert statuses[0] == "RUNNING" and statuses[-1] == "SUCCEEDED", statuses
        assert statuses.count("SUCCEEDED") == 1
        ratios = [float(r.json()["progressRatio"] or 0) for r in hook.requests[:-1]]
        assert ratios == sorted(ratios) and len(ratios) >= 2, ratios  # progress, in order


def test_account_reply_url_is_the_default_and_private_targets_need_opt_in(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with Receiver() as hook, start_server(make_settings(callback_allow_private=False)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        resp = live.create(
            {"assetId": asset["assetId"], "text_prompt": "x", "replyUrl": f"{hook.url}/x"}
        )
        assert resp.status_code == 400 and "VIDMORPH_CALLBACK_ALLOW_PRIVATE" in resp.json()["error"]
        saved = live.client.post(
            f"{live.api}/accounts/default@vidmorph.local", json={"replyUrl": "http://10.1.2.3/hook"}
        )
        assert saved.status_code == 400
    with Receiver() as hook, start_server(make_settings()) as live:
        live.client.post(
            f"{live.api}/accounts/default@vidmorph.local", json={"replyUrl": f"{hook.url}/acct"}
        )
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "x"}).json()
        assert task["replyUrl"] == f"{hook.url}/acct"
        live.wait_task(task["taskId"], {"SUCCEEDED"})
        assert hook.wait_for(lambda reqs: any(r.json()["status"] == "SUCCEEDED" for r in reqs), 10)
        assert all(r.path == "/acct" for r in hook.requests)
