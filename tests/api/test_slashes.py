"""Every route answers with or without its trailing slash, in place: no redirect (whose
Location would come from the client's Host header), and the 404 of a path no route takes is
the contract's envelope."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import LiveServer

RUNWAY = {"X-Runway-Version": "2024-11-06"}


def test_both_forms_of_a_path_are_answered_in_place(server: LiveServer, tmp_path: Path) -> None:
    api, client = server.api, server.client
    asset = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "dusk"}).json()
    evil = {"Host": "evil.example"}
    for path in (
        f"{api}/tasks/{task['taskId']}/",
        f"{api}/tasks",
        f"{api}/tasks?offset=0&limit=5",
        f"{api}/assets",
        f"{api}/features",
        f"{api}/accounts/",
        f"{api}/scheduler/",
    ):
        got = client.get(path, headers=evil)
        assert got.status_code == 200, (path, got.status_code, got.text)
        assert "location" not in got.headers
    got = client.get(f"{server.base_url}/v1/organization/", headers=RUNWAY)
    assert got.status_code == 200 and "creditBalance" in got.json()
    made = client.post(f"{api}/gen3/video/", json={"assetId": asset["assetId"], "text_prompt": "x"})
    assert made.status_code == 200 and made.json()["taskId"]
    wrong = client.put(f"{api}/tasks/{task['taskId']}/")
    assert wrong.status_code == 405 and wrong.json()["code"] == 405
    missing = client.get(f"{api}/no-such-thing/")
    assert missing.status_code == 404 and set(missing.json()) == {"error", "code"}
    # not the signed files' path: /files/ takes the key as it is written
    assert httpx.get(f"{api}/files/").status_code == 404
