"""run_task: claim a task, render it (`render.py`), finish it, call back.

The in-process pool and Celery both end here. A claim is a conditional UPDATE, so a duplicate
delivery of the same id does nothing; a heartbeat keeps the lease while the stages work.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from types import TracebackType

from vidmorph import errors
from vidmorph.domain.models import Task, task_error
from vidmorph.domain.states import TaskStatus
from vidmorph.engines.base import Engine
from vidmorph.service import notify, runway
from vidmorph.service.assets import delete_files
from vidmorph.service.context import AppContext
from vidmorph.service.render import TaskHooks, render
from vidmorph.upstream.base import Upstream

log = logging.getLogger(__name__)

INTERNAL_REASON = "INTERNAL.BAD_OUTPUT.CODE01"


class Heartbeat:
    """Renews the task's lease every lease_s / 3 from its own thread while the task runs."""

    def __init__(self, ctx: AppContext, uuid: str, owner: str) -> None:
        self.ctx, self.uuid, self.owner = ctx, uuid, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{uuid[:8]}", daemon=True)

    def _beat(self) -> None:
        lease_s = self.ctx.settings.lease_s
        while not self._stop.wait(lease_s / 3):
            try:
                if not self.ctx.tasks.heartbeat(self.uuid, self.owner, lease_s):
                    return
            except Exception:
                # A passing database error must not end the beat while the engine still runs.
                log.exception("lease renewal for task %s failed; retrying", self.uuid)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_task(
    ctx: AppContext, task_uuid: str, owner: str, engine: Engine | Upstream | None = None
) -> None:
    """Run one task to its end. `engine` is the worker's loaded engine (a Celery worker has
    exactly one); None picks the one the settings route the task's type to."""
    task = ctx.tasks.claim(task_uuid, owner, ctx.settings.lease_s)
    if task is None:
        return
    log.info("task %s running on %s (attempt %d)", task.uuid, owner, task.attempts)
    engine_name = ctx.engine_name(task.task_type)
    _observe(ctx, "vidmorph_queue_wait_seconds", engine_name, task.created_at, task.started_at)
    notify.task_changed(ctx, task)
    hooks = TaskHooks(ctx, task, owner, engine_name)
    #: whether this run wrote the task's end; a run that lost its lease (stalled past it while
    #: another worker re-ran the task) must neither call back nor count the other run's end
    won = cancelled = False
    with Heartbeat(ctx, task.uuid, owner):
        try:
            output = render(ctx, task, hooks, engine or ctx.engine(engine_name))
            won = ctx.tasks.succeed(task.uuid, owner, [output])
            if not won:
                delete_files(ctx, output)
        except errors.TaskCancelled:
            log.info("task %s stopped: cancelled or no longer ours", task.uuid)
            cancelled = True
        except errors.VidmorphError as exc:
            reason = getattr(exc, "reason", INTERNAL_REASON)
            won = _fail(ctx, task, owner, exc.public_message, reason)
        except Exception:
            log.exception("task %s failed", task.uuid)
            won = _fail(ctx, task, owner, "Internal error while generating.", INTERNAL_REASON)
    final = ctx.tasks.get(task.uuid)
    if final is None:
        return
    # A user's cancel is this run's end too (its callback went out with the DELETE).
    if won or (cancelled and final.status is TaskStatus.CANCELLED):
        _observe(
            ctx,
            "vidmorph_task_duration_seconds",
            engine_name,
            task.started_at,
            final.finished_at,
            status=final.status.value,
        )
    if won:
        notify.task_changed(ctx, final)
    if final.status is not TaskStatus.RUNNING:  # its slot is free: a THROTTLED task may go
        runway.release_throttled(ctx, final.user_id, final.email)


def _observe(
    ctx: AppContext,
    name: str,
    engine: str,
    start: datetime | None,
    end: datetime | None,
    **labels: str,
) -> None:
    if start is not None and end is not None:
        seconds = max((end - start).total_seconds(), 0.0)
        _record(ctx, name, {"engine": engine, **labels}, seconds)


def _record(ctx: AppContext, name: str, labels: dict[str, str], seconds: float) -> None:
    try:
        ctx.metrics.observe(name, labels, seconds)
    except Exception:
        # Metrics never fail a task.
        log.exception("could not record %s", name)


def _fail(ctx: AppContext, task: Task, owner: str, message: str, reason: str) -> bool:
    error = task_error(message, reason)
    return ctx.tasks.transition(task.uuid, TaskStatus.FAILED, owner=owner, error=error)
