"""/accounts: create, update, read, list, delete; maxJobs rules; passwords never echoed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.harness import LiveServer, start_server
from tests.videos import make_video
from vidmorph.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_create_update_read_and_delete_an_account(server: LiveServer) -> None:
    api = server.api
    resp = server.client.post(
        f"{api}/accounts/me@x.com", json={"email": "me@x.com", "password": "pw", "maxJobs": 5}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["email"] == "me@x.com" and body["maxJobs"] == 5
    assert "password" not in body and "pw" not in resp.text
    updated = server.client.post(f"{api}/accounts/me@x.com", data={"maxJobs": "2"}).json()
    assert updated["maxJobs"] == 2
    assert server.client.get(f"{api}/accounts/me@x.com").json()["maxJobs"] == 2
    assert set(server.client.get(f"{api}/accounts").json()) == {
        "default@vidmorph.local",
        "me@x.com",
    }
    hook = "http://127.0.0.1:9/cb"
    for clear in (None, ""):
        on = server.client.post(f"{api}/accounts/me@x.com", json={"replyUrl": hook}).json()
        assert on["replyUrl"] == hook
        kept = server.client.post(f"{api}/accounts/me@x.com", json={"maxJobs": 3}).json()
        assert kept["replyUrl"] == hook  # a field left out is left as it is
        off = server.client.post(f"{api}/accounts/me@x.com", json={"replyUrl": clear}).json()
        assert off["replyUrl"] is None, clear
    assert server.client.delete(f"{api}/accounts/me@x.com").status_code == 204
    gone = server.client.get(f"{api}/accounts/me@x.com")
    assert gone.status_code == 404 and "Configuration not found" in gone.json()["error"]
    assert server.client.delete(f"{api}/accounts/me@x.com").status_code == 404


def test_account_validation_errors_are_400(server: LiveServer) -> None:
    api = server.api
    cases = [
        ("new@x.com", {"password": "x"}),  # maxJobs required on create
        ("new@x.com", {"maxJobs": 11}),
        ("new@x.com", {"maxJobs": 0}),
        ("new@x.com", {"email": "other@x.com", "maxJobs": 1}),
        ("not-an-email", {"maxJobs": 1}),
        ("@x.com", {"maxJobs": 1}),
        ("a@", {"maxJobs": 1}),
        ("e" * 65 + "@x.com", {"maxJobs": 1}),  # RFC 5321: 64 before the @
        ("e" * 60 + "@" + "d" * 190 + ".com", {"maxJobs": 1}),  # and 254 in all
        ("new@x.com", {"maxJobs": 1, "plan": "gold"}),
        ("a@b@x.com", {"maxJobs": 1}),
        ("a b@x.com", {"maxJobs": 1}),
        ('"<script>@x.com', {"maxJobs": 1}),
        ("a@x", {"maxJobs": 1}),  # a domain name has a dot
        ("x-runwayml:y@x.com", {"maxJobs": 1}),
        ("a%3Fb@x.com", {"maxJobs": 1}),  # ? would end a raw id in a path
        ("a%23b@x.com", {"maxJobs": 1}),
        ("jos%C3%A9@x.com", {"maxJobs": 1}),
        ("a@-x.com", {"maxJobs": 1}),
        ("a@" + "d" * 64 + ".com", {"maxJobs": 1}),  # a label is at most 63
        (".a@x.com", {"maxJobs": 1}),  # dots between atoms only
        ("a..b@x.com", {"maxJobs": 1}),
        ("a.@x.com", {"maxJobs": 1}),
    ]
    for email, body in cases:
        resp = server.client.post(f"{api}/accounts/{email}", json=body)
        assert resp.status_code == 400, (email, body, resp.text)
        assert resp.json()["code"] == 400 and resp.json()["error"]
    longest = "e" * 64 + "@" + "d" * 63 + "." + "d" * 63 + "." + "d" * 57 + ".com"  # 254: taken
    assert len(longest) == 254
    assert server.client.post(f"{api}/accounts/{longest}", json={"maxJobs": 1}).status_code == 200


def test_features_report_plan_credits(server: LiveServer) -> None:
    body = server.client.get(f"{server.api}/features/").json()
    assert body["permitted"]["numPlanCredits"] == 100_000
    assert body["used"]["numPlanCredits"] == 0
    assert body["permitted"]["storageGB"] > 0


def test_account_with_tasks_in_flight_cannot_be_deleted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0)) as live:
        email = "b@x.com"
        live.client.post(f"{live.api}/accounts/{email}", json={"maxJobs": 2})
        asset = live.upload(make_video(tmp_path / "v.mp4", seconds=1), email=email)
        task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        busy = live.client.delete(f"{live.api}/accounts/{email}")
        assert busy.status_code == 409 and "cancel them first" in busy.json()["error"]
        assert live.client.delete(f"{live.api}/tasks/{task['taskId']}").status_code == 204
        assert live.client.delete(f"{live.api}/accounts/{email}").status_code == 204


def test_deleting_an_account_deletes_what_was_made_on_it(
    make_settings: Callable[..., Settings], either_database: dict[str, Any], tmp_path: Path
) -> None:
    """Its tasks, their outputs and its uploads go with it, files and links too, and its
    pending callbacks are dropped; another account's are untouched, and the account made again
    starts empty but with what it had spent."""
    with start_server(make_settings(**either_database)) as live:
        api, email = live.api, "gone@x.com"
        live.client.post(f"{api}/accounts/{email}", json={"maxJobs": 2})
        clip = make_video(tmp_path / "v.mp4", seconds=1)
        asset = live.upload(clip, email=email)
        kept = live.upload(clip, email="default@vidmorph.local")
        body = {"assetId": asset["assetId"], "text_prompt": "night", "email": email}
        task = live.create({**body, "replyUrl": "http://127.0.0.1:9/never"}).json()
        done = live.wait_task(task["taskId"], {"SUCCEEDED"})
        links = [asset["url"], done["artifacts"][0]["url"]]
        assert all(httpx.get(link).status_code == 200 for link in links)

        assert live.client.delete(f"{api}/accounts/{email}").status_code == 204
        assert live.client.get(f"{api}/tasks/{task['taskId']}").status_code == 404
        for gone in (asset, done["artifacts"][0]):
            assert live.client.get(f"{api}/assets/{gone['assetId']}").status_code == 404
        assert [httpx.get(link).status_code for link in links] == [404, 404]
        deliveries = live.ctx.deliveries.of_task(task["id"])
        assert deliveries and all(d["state"] != "pending" for d in deliveries)
        files = [p for p in (live.ctx.settings.data_dir / "files").rglob("*") if p.is_file()]
        assert files and all(asset["id"] not in str(p) for p in files)
        assert live.client.get(f"{api}/assets/{kept['assetId']}").status_code == 200
        assert httpx.get(kept["url"]).status_code == 200

        assert live.client.post(f"{api}/accounts/{email}", json={"maxJobs": 1}).status_code == 200
        assert live.client.get(f"{api}/assets/?email={email}").json() == []
        assert live.client.get(f"{api}/tasks/?email={email}").json() == []
        used = live.client.get(f"{api}/features/?email={email}").json()["used"]
        assert used["numPlanCredits"] == 10  # 1 s of gen3a, spent before the deletion


def test_out_of_range_credit_allowance_is_400_not_500(server: LiveServer) -> None:
    resp = server.client.post(
        f"{server.api}/accounts/big@x.com", json={"maxJobs": 1, "numPlanCredits": 10**30}
    )
    assert resp.status_code == 400 and resp.json()["code"] == 400


def test_plan_and_credits_are_the_operators_and_accounts_are_bounded(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(max_accounts=3)) as live:
        api = live.api
        for change in ({"plan": "standard"}, {"numPlanCredits": 10**9}):
            resp = live.client.post(f"{api}/accounts/new@x.com", json={"maxJobs": 1, **change})
            assert resp.status_code == 400 and "operator" in resp.json()["error"], change
        assert live.client.get(f"{api}/accounts/new@x.com").status_code == 404
        # what the account has, sent back as read, is no change
        mine = live.client.get(f"{api}/accounts/default@vidmorph.local").json()
        same = {"maxJobs": 2, "plan": mine["plan"], "numPlanCredits": mine["numPlanCredits"]}
        resp = live.client.post(f"{api}/accounts/default@vidmorph.local", json=same)
        assert resp.status_code == 200 and resp.json()["maxJobs"] == 2

        # the operator sets them
        cli = [sys.executable, "-m", "vidmorph", "account", "set", "default@vidmorph.local"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDMORPH_")}
        env.update(VIDMORPH_DATA_DIR=str(live.ctx.settings.data_dir), PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [*cli, "--plan", "standard", "--credits", "30"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        mine = live.client.get(f"{api}/accounts/default@vidmorph.local").json()
        assert (mine["plan"], mine["numPlanCredits"]) == ("standard", 30)

        # at most max_accounts, and one made again starts with what it had spent
        for email in ("b@x.com", "c@x.com"):
            made = live.client.post(f"{api}/accounts/{email}", json={"maxJobs": 1})
            assert made.status_code == 200
        full = live.client.post(f"{api}/accounts/d@x.com", json={"maxJobs": 1})
        assert full.status_code == 400 and "as many as this server allows" in full.json()["error"]
        asset = live.upload(make_video(tmp_path / "v.mp4", seconds=1), email="b@x.com")
        task = live.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
        live.wait_task(task["taskId"], {"SUCCEEDED"})
        assert live.client.delete(f"{api}/tasks/{task['taskId']}").status_code == 204
        assert live.client.delete(f"{api}/accounts/b@x.com").status_code == 204
        again = live.client.post(f"{api}/accounts/b@x.com", json={"maxJobs": 1})
        assert again.status_code == 200
        used = live.client.get(f"{api}/features/?email=b@x.com").json()["used"]["numPlanCredits"]
        assert used == 10  # 1 s of gen3a, spent before the account was deleted

        # what the operator granted outlives the account: made again, it has the grant
        live.ctx.accounts.upsert(1, "c@x.com", by_tenant=False, plan="standard", num_plan_credits=7)
        assert live.client.delete(f"{api}/accounts/c@x.com").status_code == 204
        back = live.client.post(f"{api}/accounts/c@x.com", json={"maxJobs": 1}).json()
        assert (back["plan"], back["numPlanCredits"]) == ("standard", 7)


def test_concurrent_new_accounts_never_exceed_the_cap(
    make_settings: Callable[..., Settings], either_database: dict[str, Any]
) -> None:
    # each create counts the user's accounts: racing ones must not all see room
    with start_server(make_settings(max_accounts=3, **either_database)) as live:

        def make(n: int) -> httpx.Response:
            with httpx.Client(headers={"Authorization": f"Bearer {live.token}"}) as c:
                return c.post(f"{live.api}/accounts/n{n}@x.com", json={"maxJobs": 1}, timeout=30)

        with ThreadPoolExecutor(16) as pool:
            codes = sorted(r.status_code for r in pool.map(make, range(16)))
        # the default account is one of the three
        assert codes.count(200) == 2 and codes.count(400) == 14
        assert len(live.client.get(f"{live.api}/accounts").json()) == 3
