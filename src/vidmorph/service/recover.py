"""Recovery: re-run tasks whose worker died (lease lapsed), fail them after max_attempts,
send PENDING tasks to the dispatcher again, queue callbacks a crash lost.

These run in the fleet's one sweeper (see `service/sweeper.py`), never in every process.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import task_error
from vidmorph.domain.states import TaskStatus
from vidmorph.service import notify
from vidmorph.service.context import AppContext

log = logging.getLogger(__name__)

LAPSED_ERROR = task_error("The task was interrupted too many times.", "INTERNAL.WORKER_LOST")


def sweep_lapsed(ctx: AppContext) -> int:
    """Requeue or fail every task whose lease lapsed; returns how many were handled."""
    handled = 0
    for uuid in ctx.tasks.lapsed():
        outcome = ctx.tasks.requeue_lapsed(uuid, ctx.settings.max_attempts, LAPSED_ERROR)
        if outcome is None:
            continue
        handled += 1
        task = ctx.tasks.get(uuid)
        if task is None:
            continue
        log.warning("task %s lost its worker; now %s", uuid, outcome.value)
        if outcome is TaskStatus.PENDING:
            ctx.dispatch(task)
        else:
            notify.task_changed(ctx, task)
    return handled


#: how long a finished task may go without its callback queued before the sweep queues it
CALLBACK_GRACE_S = 10.0


def sweep_lost_callbacks(ctx: AppContext, grace_s: float = CALLBACK_GRACE_S) -> int:
    """Queue the final callback of tasks that finished without one (a crash in between)."""
    before = utcnow() - timedelta(seconds=grace_s)
    lost = ctx.tasks.finished_without_callback(before)
    for uuid in lost:
        task = ctx.tasks.get(uuid)
        if task is not None:
            log.warning("task %s finished without its callback queued; queueing it", uuid)
            notify.task_changed(ctx, task)
    return len(lost)


def resubmit_pending(ctx: AppContext) -> int:
    """Offer every PENDING task to the dispatcher again (a restart emptied an in-process queue,
    a broker lost its messages, an API process died between commit and send); the dispatcher
    skips those it sent recently. Returns how many were sent."""
    if ctx.dispatcher is None:
        return 0
    dispatcher, now, sent = ctx.dispatcher, utcnow(), 0
    for uuid, priority, task_type, updated_at in ctx.tasks.pending_waits():
        waiting_s = (now - updated_at).total_seconds()
        engine = ctx.engine_name(task_type)
        try:
            if dispatcher.resubmit(uuid, priority, engine, waiting_s):
                sent += 1
        except Exception as exc:
            log.warning("could not reach the broker (%s); the next sweep tries again", exc)
            break
    return sent


def reconcile_queue_depth(ctx: AppContext) -> None:
    """Recount the service-wide in-flight counter (store.queue) and log any drift. Admission
    and every terminal move keep it exact in their own transactions; this is the safety net
    for rows changed by hand or by a process older than the counter."""
    was, real = ctx.tasks.queue.reconcile()
    if was != real:
        log.warning("queue depth counter was %d, %d tasks are in flight: corrected", was, real)
