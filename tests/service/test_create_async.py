"""service.generate.create_async, the create of a handler in the event loop on SQLite: what
follows the commit (the line, the dispatch) runs even when its caller is cancelled while it
waits for the grouped commit. Against a real server, SQLite file and in-process worker."""

from __future__ import annotations

import asyncio
import threading
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
