"""HEAD wherever GET is: the GET's status and headers, no body; the signed file link's HEAD
sends the file's headers without its bytes; the event stream takes GET alone."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import LiveServer


def test_head_answers_as_get_without_a_body(server: LiveServer, tmp_path: Path) -> None:
    asset = server.upload_video(tmp_path, seconds=1)
    task = server.create({"assetId": asset["assetId"], "text_prompt": "noir"}).json()
    done = server.wait_task(task["taskId"], {"SUCCEEDED"})
    url = done["artifacts"][0]["url"]
    auth = {"Authorization": f"Bearer {server.token}"}
    for path in ("/healthz", "/v1/runwayml/features/", f"/v1/runwayml/tasks/{task['taskId']}"):
        get = httpx.get(server.base_url + path, headers=auth)
        head = httpx.head(server.base_url + path, headers=auth)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-type"] == get.headers["content-type"], path
        assert head.headers["content-length"] == str(len(get.content)), path
    # tenancy and auth hold as for GET
    assert httpx.head(f"{server.api}/features/").status_code == 401
    assert httpx.head(f"{server.api}/tasks/not-a-task", headers=auth).status_code == 404

    got = httpx.get(url)
    head = httpx.head(url)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(got.content)) != "0"
    assert head.headers["content-type"] == "video/mp4"
    assert head.headers["etag"] == got.headers["etag"]
    assert httpx.head(url.replace("sig=", "sig=0")).status_code == 404

    events = httpx.head(f"{server.api}/tasks/{task['taskId']}/events", headers=auth)
    assert events.status_code == 405 and events.headers["allow"] == "GET"
