"""Fetching videoUri URLs under limits: a total deadline however slowly the host sends, at
most two fetches at once per user, and none at all for a suspended account."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.harness import start_server
from tests.receiver import Receiver, dripping
from vidmorph.config import Settings
from vidmorph.service.accounts import create_token

SLOW_FILE = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 900\r\n\r\n"
SLOW_FILE += b"x" * 900


def _create(base: str, token: str, uri: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/video_to_video",
        json={"model": "gen4_aleph", "promptText": "snow", "videoUri": uri},
        headers={"Authorization": f"Bearer {token}", "X-Runway-Version": "2024-11-06"},
        timeout=30,
    )


def test_slow_hosts_hold_two_fetches_per_user_each_until_the_deadline(
    make_settings: Callable[..., Settings],
) -> None:
    with (
        start_server(make_settings(workers=0, fetch_total_s=2.0)) as live,
        dripping(SLOW_FILE, interval_s=0.05) as host,
    ):
        _, other = create_token(live.ctx)
        answers: dict[str, Any] = {}

        def create(name: str, token: str) -> None:
            started_s = time.monotonic()
            answers[name] = (_create(live.base_url, token, f"{host}/{name}.mp4"), started_s)

        slow = [threading.Thread(target=create, args=(n, live.token)) for n in ("a", "b")]
        for thread in slow:
            thread.start()
        time.sleep(0.7)  # both are fetching now
        third = _create(live.base_url, live.token, f"{host}/c.mp4")
        assert third.status_code == 429 and "At most 2" in third.json()["error"]
        assert set(third.json()) == {"error"}
        create("theirs", other)  # another user is not held back by this one's fetches
        for thread in slow:
            thread.join()
        for name in ("a", "b", "theirs"):
            answer, _ = answers[name]
            assert answer.status_code == 400, name
            assert answer.json()["error"] == "videoUri took longer than 2 s.", name
        assert time.monotonic() - answers["theirs"][1] < 4


def test_a_suspended_account_fetches_nothing(make_settings: Callable[..., Settings]) -> None:
    with start_server(make_settings(workers=0)) as live, Receiver() as host:
        live.ctx.accounts.set_suspended(1, live.ctx.settings.default_email, True)
        refused = _create(live.base_url, live.token, f"{host.url}/clip.mp4")
        assert refused.status_code == 401
        assert refused.json() == {"error": "This account has been suspended."}
        assert host.requests == []
