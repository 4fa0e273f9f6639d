"""Polls under load while tasks really run (in-process worker, preview engine), on SQLite and
PostgreSQL: with answers reused (service.view_cache) and, on PostgreSQL, polls batched
(store.batched), every poller still sees each task move forward only, PENDING -> RUNNING ->
SUCCEEDED with its progress never going back, and ends on the finished task with its
artifact."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import LiveServer, start_server
from vidmorph.config import Settings

_RANK = {"PENDING": 0, "RUNNING": 1, "SUCCEEDED": 2}
POLLERS = 8


@pytest.fixture
def live(
    either_database: dict[str, Any], make_settings: Callable[..., Settings]
) -> Iterator[LiveServer]:
    with start_server(make_settings(**either_database)) as server:
        yield server


def test_every_poller_sees_each_task_only_move_forward(live: LiveServer, tmp_path: Path) -> None:
    asset = live.upload_video(tmp_path, seconds=2)
    task_ids = []
    for prompt in ("night", "rain", "winter"):
        resp = live.create({"assetId": asset["assetId"], "text_prompt": prompt, "seconds": 5})
        assert resp.status_code == 200, resp.text
        task_ids.append(resp.json()["taskId"])
    seen: list[dict[str, list[tuple[int, float]]]] = [{} for _ in range(POLLERS)]
    last: list[dict[str, dict[str, Any]]] = [{} for _ in range(POLLERS)]
    failures: list[str] = []

    def poll(n: int) -> None:
        headers = {"Authorization": f"Bearer {live.token}"}
        deadline = time.monotonic() + 120
        with httpx.Client(headers=headers, timeout=30) as client:
            pending = set(task_ids)
            while pending and time.monotonic() < deadline:
                for task_id in sorted(pending):
                    resp = client.get(f"{live.api}/tasks/{task_id}")
                    if resp.status_code != 200:
                        failures.append(f"{resp.status_code} {resp.text}")
                        return
                    body = resp.json()
                    if body["taskId"] != task_id:
                        failures.append(f"asked for {task_id}, got {body['taskId']}")
                        return
                    if body["status"] not in _RANK:
                        failures.append(f"unexpected status {body['status']}: {body['error']}")
                        return
                    ratio = float(body["progressRatio"] or 0)
                    seen[n].setdefault(task_id, []).append((_RANK[body["status"]], ratio))
                    last[n][task_id] = body
                    if body["status"] == "SUCCEEDED":
                        pending.discard(task_id)

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(POLLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not failures, failures[:3]
    for n in range(POLLERS):
        for task_id in task_ids:
            steps = seen[n][task_id]
            assert steps == sorted(steps), f"poller {n} saw {task_id} go back: {steps}"
            final = last[n][task_id]
            assert final["status"] == "SUCCEEDED", final
            assert final["progressRatio"] == "1" and len(final["artifacts"]) == 1
    assert sum(len(s) for p in seen for s in p.values()) > 10 * POLLERS  # they really polled
