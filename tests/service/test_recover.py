"""Recovery sweeps: a finished task whose callback was never queued still gets it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.harness import start_server
from tests.receiver import Receiver
from vidmorph.config import Settings
from vidmorph.domain.states import TaskStatus
from vidmorph.service import recover
from vidmorph.service.notify import Deliverer


def test_task_finished_without_its_callback_queued_gets_it_from_the_sweep(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with Receiver() as hook, start_server(make_settings(workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create(
            {"assetId": asset["assetId"], "text_prompt": "night", "replyUrl": f"{hook.url}/cb"}
        ).json()
        # As if the process died right after this UPDATE, before queueing the callback:
        assert live.ctx.tasks.transition(task["id"], TaskStatus.FAILED, error={"reason": "X"})
        assert live.ctx.deliveries.of_task(task["id"]) == []
        assert recover.sweep_lost_callbacks(live.ctx, grace_s=0) == 1
        assert recover.sweep_lost_callbacks(live.ctx, grace_s=0) == 0  # queued once only
        Deliverer(live.ctx).deliver_due()
        assert hook.wait_for_count(1, 10)
        sent = hook.requests[0].json()
        assert sent["taskId"] == task["taskId"] and sent["status"] == "FAILED"


def test_recent_finishes_are_left_to_the_normal_path(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings(workers=0)) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        task = live.create(
            {
                "assetId": asset["assetId"],
                "text_prompt": "night",
                "replyUrl": "http://127.0.0.1:9/cb",
            }
        ).json()
        live.ctx.tasks.transition(task["id"], TaskStatus.CANCELLED)
        assert recover.sweep_lost_callbacks(live.ctx) == 0  # inside the grace period
