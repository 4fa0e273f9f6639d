"""The in-process pool: fails fast on an engine that cannot load, re-runs pending tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from tests.contracts.tasks import new_task
from tests.harness import start_server
from vidmorph.config import Settings
from vidmorph.container import build_services


def test_engine_that_cannot_load_stops_start_up(make_settings: Callable[..., Settings]) -> None:
    services = build_services(make_settings(engine="tests.engines.fixtures:fails_in_load"))
    with pytest.raises(RuntimeError, match="no weights"):
        services.start()
    services.close()


def test_unknown_engine_name_is_a_clear_error(make_settings: Callable[..., Settings]) -> None:
    services = build_services(make_settings(engine="nosuch"))
    with pytest.raises(ValueError, match="Unknown engine 'nosuch'"):
        services.start()
    services.close()


def test_pending_task_no_dispatcher_was_told_about_still_runs(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with start_server(make_settings()) as live:
        asset = live.upload_video(tmp_path, seconds=1)
        task = new_task(credits=10)
        orphan = replace(
            task,
            email="default@vidmorph.local",
            params=replace(task.params, asset_uuid=asset["id"], seconds=1),
        )
        # Admitted by another process that died before handing it to its workers:
        live.ctx.tasks.admit(orphan, max_jobs=5, max_queue_depth=100)
        done = live.wait_task(orphan.task_id, {"SUCCEEDED", "FAILED"}, timeout_s=30)
        assert done["status"] == "SUCCEEDED", done
