"""POST /v1/organization/usage through the official runwayml SDK: credits per UTC day and
model, net of refunds, over a bounded range of days."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import runwayml
from runwayml import RunwayML
from sqlalchemy import select, update

from tests.harness import start_server
from tests.videos import make_video
from vidmorph.config import Settings
from vidmorph.domain.clock import utcnow
from vidmorph.service.accounts import create_token
from vidmorph.store.tables import tasks as tasks_table


def _finish(client: RunwayML, task_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.tasks.retrieve(task_id).status
        if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


def test_usage_counts_spent_credits_per_day_and_model(
    make_settings: Callable[..., Settings], either_database: dict[str, Any], tmp_path: Path
) -> None:
    with start_server(make_settings(**either_database)) as live:
        client = RunwayML(api_key=live.token, base_url=live.base_url, max_retries=0)
        uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=1)).uri
        aleph = client.video_to_video.create(model="gen4_aleph", prompt_text="dusk", video_uri=uri)
        older = client.video_to_video.create(model="aleph2", prompt_text="snow", video_uri=uri)
        flagged = client.video_to_video.create(
            model="gen4_aleph", prompt_text="graphic child porn scene", video_uri=uri
        )
        assert [_finish(client, t.id) for t in (aleph, older)] == ["SUCCEEDED", "SUCCEEDED"]
        assert _finish(client, flagged.id) == "FAILED"  # its credits went back
        # useapi's surface spends the same account's credits
        asset = live.upload_video(tmp_path, seconds=1)
        gen3 = live.create({"assetId": asset["assetId"], "text_prompt": "noir"}).json()
        live.wait_task(gen3["taskId"], {"SUCCEEDED"})
        # one task made three days ago
        now = utcnow()
        with live.ctx.db.write() as conn:
            conn.execute(
                update(tasks_table)
                .where(tasks_table.c.uuid == older.id)
                .values(created_at=now - timedelta(days=3))
            )
        today, three_ago = now.date(), (now - timedelta(days=3)).date()

        usage = client.organization.retrieve_usage()  # the 30 days up to today
        assert usage.models == ["aleph2", "gen3a", "gen4_aleph"]
        assert [r.date for r in usage.results] == [three_ago, today]
        assert [(u.model, u.amount) for u in usage.results[0].used_credits] == [("aleph2", 15)]
        assert [(u.model, u.amount) for u in usage.results[1].used_credits] == [
            ("gen3a", 10),
            ("gen4_aleph", 15),
        ]
        # deleting tasks gives nothing back: Runway keeps charging what was spent
        generations = client.organization.retrieve().usage.models["gen4_aleph"].daily_generations
        assert generations == 2
        for task in (aleph, flagged):
            client.tasks.delete(task.id)
        assert client.organization.retrieve_usage() == usage
        after = client.organization.retrieve().usage.models["gen4_aleph"].daily_generations
        assert after == generations
        with live.ctx.db.read() as conn:
            kept = conn.execute(select(tasks_table.c.uuid)).scalars().all()
        assert aleph.id not in kept and flagged.id not in kept

        just_today = client.organization.retrieve_usage(
            start_date=today, before_date=today + timedelta(days=1)
        )
        assert [r.date for r in just_today.results] == [today]
        before_today = client.organization.retrieve_usage(before_date=today)
        assert [r.date for r in before_today.results] == [three_ago]
        nothing = client.organization.retrieve_usage(start_date=today + timedelta(days=1))
        assert nothing.models == [] and nothing.results == []

        # another user's organization (a default account of the same email) sees none of it
        _, other = create_token(live.ctx)
        theirs = httpx.post(
            f"{live.base_url}/v1/organization/usage",
            json={},
            headers={"Authorization": f"Bearer {other}", "X-Runway-Version": "2024-11-06"},
        )
        assert theirs.status_code == 200 and theirs.json() == {"models": [], "results": []}

        for bad in (
            {"start_date": today - timedelta(days=91), "before_date": today},
            {"start_date": today, "before_date": today},
            {"start_date": "2026-13-01"},
            {"start_date": True},
            {"before_date": "0001-01-01"},
            {"start_date": "9999-12-31"},
            {"start_date": "9999-12-30", "before_date": "9999-12-31"},
        ):
            with pytest.raises(runwayml.BadRequestError):
                client.organization.retrieve_usage(**bad)  # type: ignore[arg-type]
        unknown = httpx.post(
            f"{live.base_url}/v1/organization/usage",
            json={"startDate": str(today), "until": "x"},
            headers={"Authorization": f"Bearer {live.token}", "X-Runway-Version": "2024-11-06"},
        )
        assert unknown.status_code == 400 and set(unknown.json()) == {"error"}


def test_racing_deletes_of_a_task_delete_it_once_and_count_its_credits_once(
    make_settings: Callable[..., Settings], either_database: dict[str, Any], tmp_path: Path
) -> None:
    with start_server(make_settings(**either_database)) as live:
        client = RunwayML(api_key=live.token, base_url=live.base_url, max_retries=0)
        uri = client.uploads.create_ephemeral(file=make_video(tmp_path / "in.mp4", seconds=1)).uri
        task = client.video_to_video.create(model="gen4_aleph", prompt_text="dusk", video_uri=uri)
        assert _finish(client, task.id) == "SUCCEEDED"
        start = threading.Barrier(8)
        answers: list[int] = []

        def delete() -> None:
            start.wait()
            answer = httpx.delete(
                f"{live.base_url}/v1/tasks/{task.id}",
                headers={"Authorization": f"Bearer {live.token}", "X-Runway-Version": "2024-11-06"},
            )
            answers.append(answer.status_code)

        threads = [threading.Thread(target=delete) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # one deletion deleted it; the others, racing it, found it gone
        assert sorted(answers) == [204] + [404] * 7, answers
        usage = client.organization.retrieve_usage()
        assert [(u.model, u.amount) for r in usage.results for u in r.used_credits] == [
            ("gen4_aleph", 15)
        ]
        assert client.organization.retrieve().usage.models["gen4_aleph"].daily_generations == 1
