"""Moderation at admission: a FAILED task with SAFETY.INPUT.TEXT, its callback, suspension."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.harness import start_server
from tests.receiver import Receiver
from vidmorph.config import Settings
from vidmorph.service.accounts import create_token


def test_flagged_prompt_fails_at_once_calls_back_and_suspends(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with Receiver() as hook, start_server(make_settings(moderation_suspend_after=2)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        bad = {
            "assetId": asset["assetId"],
            "text_prompt": "graphic child porn scene",
            "replyUrl": f"{hook.url}/cb",
            "replyRef": "m1",
        }
        resp = live.create(bad)
        assert resp.status_code == 200
        task = resp.json()
        assert task["status"] == "FAILED"
        error = task["error"]
        assert error["reason"] == "SAFETY.INPUT.TEXT" and error["tally_asimov"] is True
        assert error["moderation_category"] == "sexual/minors"
        assert "did not pass moderation" in error["message"] == error["errorMessage"]
        assert task["features"]["numPlanCredits_used"] == 0
        assert hook.wait_for_count(1, 10)
        sent = hook.requests[0].json()
        assert sent["taskId"] == task["taskId"] and sent["status"] == "FAILED"
        assert sent["replyRef"] == "m1"
        assert live.create(bad).json()["status"] == "FAILED"  # second strike suspends
        suspended = live.create({"assetId": asset["assetId"], "text_prompt": "a calm lake"})
        assert suspended.status_code == 401
        assert suspended.json() == {"error": "This account has been suspended.", "code": 401}
        # deleting and making the account again would shed the suspension: refused
        gone = live.client.delete(f"{live.api}/accounts/default@vidmorph.local")
        assert gone.status_code == 401 and gone.json()["error"] == suspended.json()["error"]
        kept = live.client.get(f"{live.api}/accounts/default@vidmorph.local").json()
        assert kept["error"] == "This account has been suspended."
        # nor may it be changed (useapi answers 401 for a suspended account's POST)
        changed = live.client.post(
            f"{live.api}/accounts/default@vidmorph.local",
            json={"email": "default@vidmorph.local", "maxJobs": 2},
        )
        assert changed.status_code == 401 and changed.json() == suspended.json()
        # nor does a new email: no new account while one is suspended; another user is not
        # concerned
        fresh = live.client.post(
            f"{live.api}/accounts/new@x.com", json={"email": "new@x.com", "maxJobs": 1}
        )
        assert fresh.status_code == 401 and "no new account" in fresh.json()["error"]
        assert live.client.get(f"{live.api}/accounts/new@x.com").status_code == 404
        _, other = create_token(live.ctx)
        theirs = live.client.post(
            f"{live.api}/accounts/new@x.com",
            json={"email": "new@x.com", "maxJobs": 1},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert theirs.status_code == 200
        live.ctx.accounts.set_suspended(1, "default@vidmorph.local", False)
        # lifted, its strikes are forgotten: one more refusal does not suspend it again
        assert live.create(bad).json()["status"] == "FAILED"
        calm = live.create({"assetId": asset["assetId"], "text_prompt": "a lake"})
        assert calm.status_code == 200
        lifted = live.client.post(
            f"{live.api}/accounts/new@x.com", json={"email": "new@x.com", "maxJobs": 1}
        )
        assert lifted.status_code == 200
        assert (
            live.create({"assetId": asset["assetId"], "text_prompt": "a calm lake"}).status_code
            == 200
        )


def test_benign_prompts_are_admitted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        for prompt in ("a knight fighting a dragon", "zombie apocalypse, dark horror mood"):
            task = live.create({"assetId": asset["assetId"], "text_prompt": prompt}).json()
            assert task["status"] == "PENDING", prompt


def test_retried_flagged_request_with_idempotency_key_is_one_task_and_one_strike(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(moderation_suspend_after=2, workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        bad = {"assetId": asset["assetId"], "text_prompt": "graphic child porn scene"}
        first = live.create(bad, headers={"Idempotency-Key": "k1"}).json()
        again = live.create(bad, headers={"Idempotency-Key": "k1"})
        third = live.create(bad, headers={"Idempotency-Key": "k1"})
        assert again.json()["taskId"] == third.json()["taskId"] == first["taskId"]
        ok = live.create({"assetId": asset["assetId"], "text_prompt": "a calm lake"})
        assert ok.status_code == 200  # one strike only: not suspended
