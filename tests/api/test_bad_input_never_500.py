"""Bad input found by black-box fuzzing: each must get a 4xx envelope, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.harness import LiveServer, start_server
from tests.videos import make_video
from vidmorph.config import Settings

TASK_UUID = "1c51ecef-f472-48c7-9bc4-18d972efce07"


def _call(
    live: LiveServer, method: str, path: str, content: bytes | None = None, ctype: str = ""
) -> httpx.Response:
    """One connection per request: after a 500, uvicorn drops a kept-alive connection."""
    headers = {"Authorization": f"Bearer {live.token}"}
    if ctype:
        headers["Content-Type"] = ctype
    return httpx.request(method, f"{live.api}/{path}", content=content, headers=headers)


def _assert_4xx_envelope(resp: httpx.Response, what: object) -> None:
    assert 400 <= resp.status_code < 500, (what, resp.status_code, resp.text)
    body = resp.json()
    assert set(body) >= {"error", "code"} and body["code"] == resp.status_code, (what, body)


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer user:\xb2-abc",  # latin-1 superscript two: str.isdigit() is True, int() fails
        b"Bearer user:9223372036854775808-abc",  # past SQLite's 64-bit INTEGER
        b"Bearer user:" + b"9" * 5000 + b"-abc",  # past int()'s 4300-digit limit
    ],
)
def test_token_with_odd_user_number_is_401(server: LiveServer, authorization: bytes) -> None:
    resp = httpx.get(f"{server.api}/features/", headers=[(b"Authorization", authorization)])
    _assert_4xx_envelope(resp, authorization[:40])


def test_id_with_5000_digit_user_number_is_404(server: LiveServer) -> None:
    user = "9" * 5000
    for method, path in [
        ("GET", f"tasks/user:{user}-runwayml:a@b.c-task:{TASK_UUID}"),
        ("DELETE", f"tasks/user:{user}-runwayml:a@b.c-task:{TASK_UUID}"),
        ("DELETE", f"scheduler/user:{user}-runwayml:a@b.c-task:{TASK_UUID}"),
        ("GET", f"assets/user:{user}-runwayml:a@b.c-asset:{TASK_UUID}"),
        ("DELETE", f"assets/user:{user}-runwayml:a@b.c-asset:{TASK_UUID}"),
    ]:
        _assert_4xx_envelope(_call(server, method, path), (method, path))


@pytest.mark.parametrize("route", ["gen3/video", "gen3turbo/video", "accounts/a@b.c"])
def test_deeply_nested_json_body_is_400(server: LiveServer, route: str) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        resp = _call(server, "POST", route, body, "application/json")
        _assert_4xx_envelope(resp, (route, body[:10]))


def test_file_link_with_non_ascii_sig_is_404(server: LiveServer, tmp_path: Path) -> None:
    url = urlsplit(server.upload_video(tmp_path, seconds=0.5, size=(64, 48))["url"])
    expires = url.query.split("expires=")[1].split("&")[0]
    for sig in ("%C3%A9", "%FF"):
        resp = httpx.get(f"{server.base_url}{url.path}?expires={expires}&sig={sig}")
        _assert_4xx_envelope(resp, sig)


def test_nul_bytes_and_big_user_numbers_are_4xx_on_postgresql(
    make_settings: Callable[..., Settings], postgres_url: str, tmp_path: Path
) -> None:
    with start_server(make_settings(database_url=postgres_url)) as live:
        video = make_video(tmp_path / "in.mp4", seconds=0.5, size=(64, 48))
        asset = live.upload(video)
        body = json.dumps({"assetId": asset["assetId"], "text_prompt": "x", "replyRef": "a\0b"})
        cases = [
            _call(live, "POST", "assets/?name=a%00b", video.read_bytes(), "video/mp4"),
            _call(live, "GET", "features/?email=a%00@b.c"),
            _call(live, "GET", "tasks/?email=a%00@b.c"),
            _call(live, "GET", "accounts/a%00@b.c"),
            _call(live, "POST", "accounts/a%00@b.c", b'{"maxJobs": 1}', "application/json"),
            _call(live, "POST", "gen3/video", body.encode(), "application/json"),
            # users.id is a 32-bit INTEGER there
            httpx.get(
                f"{live.api}/features/", headers={"Authorization": "Bearer user:2147483648-x"}
            ),
        ]
        # Refusing (4xx) or cleaning the value (2xx) are both fine; a 500 is not.
        failed = [(str(r.request.url)[:80], r.status_code) for r in cases if r.status_code >= 500]
        assert not failed
        for resp in cases:
            if resp.status_code >= 400:
                _assert_4xx_envelope(resp, resp.request.url)


def test_refusals_before_routing_use_the_envelope_of_their_surface(server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {server.token}", "X-Runway-Version": "2024-11-06"}
    runway = [
        httpx.get(f"{server.base_url}/v1/tasks/a%00b", headers=auth),
        httpx.get(f"{server.base_url}/v1/tasks/a%0Ab", headers=auth),
        httpx.get(f"{server.base_url}/v1/organization?x=%00", headers=auth),
    ]
    assert [r.status_code for r in runway] == [404, 404, 400]
    for resp in runway:  # Runway's SDKs read {"error": "..."}
        assert set(resp.json()) == {"error"}, resp.request.url
    useapi = [
        httpx.get(f"{server.api}/tasks/a%00b", headers=auth),
        httpx.get(f"{server.base_url}/v1/runwayml", headers=auth),
    ]
    for resp in useapi:
        assert resp.status_code == 404 and resp.json()["code"] == 404, resp.request.url
