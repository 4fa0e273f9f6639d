"""Bearer tokens, the 401 envelope, and one user never seeing another's things (404)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import LiveServer
from vidmorph.service.accounts import create_token

UNAUTHORIZED = {"error": "Unauthorized", "code": 401}


def test_missing_token_is_401_in_the_contract_envelope(server: LiveServer) -> None:
    resp = httpx.get(f"{server.api}/tasks/")
    assert resp.status_code == 401 and resp.json() == UNAUTHORIZED


def test_wrong_or_malformed_tokens_are_401(server: LiveServer) -> None:
    for header in (
        "Bearer user:1-wrong",
        "Bearer nonsense",
        f"Basic {server.token}",
        "Bearer user:99-" + server.token.split("-", 1)[1],
    ):
        resp = httpx.get(f"{server.api}/accounts", headers={"Authorization": header})
        assert resp.status_code == 401 and resp.json() == UNAUTHORIZED, header


def test_created_token_works_and_sees_only_its_own_accounts(server: LiveServer) -> None:
    user, token = create_token(server.ctx)
    assert token.startswith(f"user:{user.id}-") and user.id != 1
    other = httpx.Client(headers={"Authorization": f"Bearer {token}"})
    mine = other.get(f"{server.api}/accounts").json()
    theirs = server.client.get(f"{server.api}/accounts").json()
    assert set(mine) == set(theirs) == {"default@vidmorph.local"}
    other.post(f"{server.api}/accounts/second@x.com", json={"maxJobs": 2})
    assert "second@x.com" not in server.client.get(f"{server.api}/accounts").json()


def test_another_users_asset_and_task_are_404(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    _, token = create_token(server.ctx)
    intruder = httpx.Client(headers={"Authorization": f"Bearer {token}"})
    forged_task = task["taskId"].replace("user:1-", f"user:{token.split(':')[1].split('-')[0]}-")
    for path in (f"assets/{asset['assetId']}", f"tasks/{task['taskId']}", f"tasks/{forged_task}"):
        resp = intruder.get(f"{server.api}/{path}")
        assert resp.status_code == 404, path
        assert resp.json()["code"] == 404
    assert intruder.delete(f"{server.api}/tasks/{task['taskId']}").status_code == 404
    assert (
        intruder.post(
            f"{server.api}/gen3/video", json={"assetId": asset["assetId"], "text_prompt": "x"}
        ).status_code
        == 404
    )


def test_an_id_naming_another_account_of_the_same_user_is_404(
    server: LiveServer, tmp_path: Path
) -> None:
    """A composite id names its account: the right uuid under another email is not the task
    or asset, on every path that reads one (poll, delete, a create from the asset)."""
    asset = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "night"}).json()
    server.client.post(f"{server.api}/accounts/second@x.com", json={"maxJobs": 2})
    wrong_task = task["taskId"].replace("default@vidmorph.local", "second@x.com")
    wrong_asset = asset["assetId"].replace("default@vidmorph.local", "second@x.com")
    assert wrong_task != task["taskId"] and wrong_asset != asset["assetId"]
    for path in (f"tasks/{wrong_task}", f"assets/{wrong_asset}"):
        resp = server.client.get(f"{server.api}/{path}")
        assert resp.status_code == 404 and resp.json()["code"] == 404, path
    assert server.client.delete(f"{server.api}/tasks/{wrong_task}").status_code == 404
    assert server.client.delete(f"{server.api}/assets/{wrong_asset}").status_code == 404
    made = server.client.post(
        f"{server.api}/gen3/video", json={"assetId": wrong_asset, "text_prompt": "x"}
    )
    assert made.status_code == 404, made.text
    # The right ids still work, so the 404s above were the email's doing.
    assert server.client.get(f"{server.api}/tasks/{task['taskId']}").status_code == 200
    assert server.client.get(f"{server.api}/assets/{asset['assetId']}").status_code == 200
