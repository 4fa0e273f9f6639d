"""service.generate.create_async, the create of a handler in the event loop on SQLite: what
follows the commit (the line, the dispatch) runs even when its caller is cancelled while it
waits for the grouped commit. Against a real server, SQLite file and in-process worker."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.harness import start_server
from vidmorph.config import Settings
from vidmorph.service import generate
from vidmorph.service.accounts import Authenticator
from vidmorph.service.generate import CreateRequest


def test_a_create_cancelled_while_it_waits_for_the_commit_still_runs_its_task(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # No sweeper pass during the test: only the create's own dispatch can start the task.
    with start_server(make_settings(recover_interval_s=3600.0)) as live:
        asset = live.upload_video(tmp_path, seconds=1, size=(64, 48))
        ctx = live.ctx
        user = Authenticator(ctx).authenticate(f"Bearer {live.token}")
        entered, release = threading.Event(), threading.Event()

        def hold(conn: Connection) -> None:
            entered.set()
            release.wait(10)

        async def main() -> None:
            request = CreateRequest(asset_id=asset["assetId"], text_prompt="the street at night")
            job = asyncio.ensure_future(generate.create_async(ctx, user, request, "gen3a"))
            while ctx.db.group._queue.qsize() < 1:  # its admission waits behind `hold`
                await asyncio.sleep(0.005)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
            release.set()
            while len(asyncio.all_tasks()) > 1:  # the shielded admission finishes in this loop
                await asyncio.sleep(0.01)

        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(ctx.db.group.run, hold)
            assert entered.wait(10)
            asyncio.run(main())
            held.result(10)
        listed = live.client.get(f"{live.api}/tasks/").json()
        assert len(listed) == 1
        done = live.wait_task(listed[0]["taskId"], {"SUCCEEDED", "FAILED"}, timeout_s=60)
        assert done["status"] == "SUCCEEDED", done


def test_a_create_in_the_event_loop_never_waits_on_an_engines_load(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """`engine()` holds the engine lock across a model's load (minutes for a diffusion model).
    A create whose estimator is made already does not take that lock, and the first create,
    which must make it, waits in a thread: the event loop keeps answering meanwhile."""
    with start_server(make_settings(workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1, size=(64, 48))
        body = {"assetId": asset["assetId"], "text_prompt": "the street at night"}
        name = live.ctx.engine_name("gen3a")
        assert not live.ctx.has_estimator(name)
        with ThreadPoolExecutor(1) as pool:
            with live.ctx._engine_lock:  # as if a worker were loading a model
                first = pool.submit(live.create, body)
                time.sleep(0.3)
                assert not first.done()  # it waits for the lock, in a thread
                assert live.client.get(f"{live.base_url}/healthz", timeout=2).status_code == 200
            assert first.result(10).status_code == 200
        assert live.ctx.has_estimator(name)
        with live.ctx._engine_lock:
            second = live.client.post(f"{live.api}/gen3/video", json=body, timeout=5)
        assert second.status_code == 200, second.text
