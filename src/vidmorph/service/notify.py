"""Callbacks to replyUrl: durable rows per status change, throttled progress, a sender thread.

A terminal delivery is retried with exponential backoff until the receiver answers 2xx or it
expires; progress deliveries get one try. Each carries the task exactly as GET returns it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import ClassVar

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Delivery, Task
from vidmorph.domain.states import TERMINAL
from vidmorph.service.context import AppContext
from vidmorph.service.views import task_view

log = logging.getLogger(__name__)

_last_progress: dict[str, float] = {}
_progress_lock = threading.Lock()


def task_changed(ctx: AppContext, task: Task) -> None:
    """Queue the task's current state for its replyUrl (no-op without one)."""
    if not task.reply_url:
        return
    fresh = ctx.tasks.get(task.uuid) or task
    body = json.dumps(task_view(ctx, fresh)).encode()
    ctx.deliveries.enqueue(
        task.uuid,
        task.user_id,
        task.reply_url,
        body,
        terminal=fresh.status in TERMINAL,
        ttl_s=ctx.settings.callback_expire_s,
    )
    Deliverer.wake_all()


def task_progressed(ctx: AppContext, task: Task) -> None:
    """Like task_changed, at most once per `callback_progress_interval_s` per task."""
    if not task.reply_url:
        return
    now = time.monotonic()
    with _progress_lock:
        last = _last_progress.get(task.uuid, 0.0)
        if now - last < ctx.settings.callback_progress_interval_s:
            return
        _last_progress[task.uuid] = now
        if len(_last_progress) > 10_000:
            _last_progress.clear()
    task_changed(ctx, task)


class Deliverer:
    """Sends due deliveries from a daemon thread; several processes may run one each."""

    _instances: ClassVar[list[Deliverer]] = []

    def __init__(self, ctx: AppContext, poll_s: float = 0.5) -> None:
        self.ctx = ctx
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidmorph-deliver", daemon=True)

    @classmethod
    def wake_all(cls) -> None:
        for d in cls._instances:
            d._wake.set()

    def start(self) -> None:
        Deliverer._instances.append(self)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10)
        if self in Deliverer._instances:
            Deliverer._instances.remove(self)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception:
                log.exception("callback delivery loop failed; retrying")
                sent = 0
            if not sent:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def deliver_due(self, limit: int = 20) -> int:
        hold_s = self.ctx.settings.callback_timeout_s * 2
        due = self.ctx.deliveries.claim_due(limit, hold_s)
        for delivery in due:
            self._deliver(delivery)
        return len(due)

    def _deliver(self, d: Delivery) -> None:
        user = self.ctx.users.get(d.user_id)
        if user is None:
            self.ctx.deliveries.dropped(d.id, "user no longer exists")
            return
        result = self.ctx.sender.send(
            d.url, d.body, secret=user.webhook_secret, msg_id=f"msg_{d.task_uuid}_{d.id}"
        )
        if result.ok:
            self.ctx.deliveries.delivered(d.id)
            return
        error = result.error or f"HTTP {result.status_code}"
        now = utcnow()
        s = self.ctx.settings
        delay_s = min(s.callback_retry_max_s, s.callback_retry_base_s * 2**d.attempts)
        retry_at = now + timedelta(seconds=delay_s)
        if d.terminal and result.retryable and retry_at < d.expires_at:
            log.info(
                "callback %s for task %s failed (%s); retry in %.1fs",
                d.id,
                d.task_uuid,
                error,
                delay_s,
            )
            self.ctx.deliveries.retry_at(d.id, retry_at, error)
        else:
            log.warning("callback %s for task %s dropped: %s", d.id, d.task_uuid, error)
            self.ctx.deliveries.dropped(d.id, error)
