"""Callbacks to replyUrl: a durable row for the terminal state, a sender thread.

The contract calls replyUrl once, when the task completed or failed; `callback_events="all"`
also queues every status change and progress (throttled). A terminal delivery is retried with
exponential backoff until the receiver answers 2xx or it expires; the others get one try.
Each carries the task exactly as GET returns it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import ClassVar

from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import Delivery, Task
from vidmorph.domain.states import TERMINAL
from vidmorph.service.context import AppContext
from vidmorph.service.views import task_view
from vidmorph.store.deliveries import target_of

log = logging.getLogger(__name__)

_last_progress: dict[str, float] = {}
_progress_lock = threading.Lock()


def task_changed(ctx: AppContext, task: Task) -> None:
    """Queue the task's current state for its replyUrl (no-op without one, and for a state
    that is not terminal unless `callback_events` is "all")."""
    if not task.reply_url:
        return
    fresh = ctx.tasks.get(task.uuid) or task
    if fresh.status not in TERMINAL and ctx.settings.callback_events != "all":
        return
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
    if not task.reply_url or ctx.settings.callback_events != "all":
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


#: sends at once per process; to one user's receiver (scheme://host:port); to all of one user's
MAX_PARALLEL_SENDS = 16
MAX_SENDS_PER_TARGET = 2
MAX_SENDS_PER_USER = 4


class Deliverer:
    """Sends due deliveries from a pool of threads; several processes may run one each.

    Each delivery is claimed (held in the database) only when a sending thread is free for it,
    so a hold never runs out while the delivery waits behind others, and the hold is renewed
    while its send runs, however long: two processes do not send the same callback. Sends run
    concurrently, at most `per_target` at a time to one user's receiver and `per_user` to all
    of one user's, the earliest due first, and deliveries of one task go out one after another,
    in order, across every process (the store hands out only a task's oldest pending one): a
    tenant's slow or failing receivers hold that tenant's slots, never everyone's, and their
    retries wait in the queue for their due time, behind newer first tries.
    """

    _instances: ClassVar[list[Deliverer]] = []

    def __init__(
        self,
        ctx: AppContext,
        poll_s: float = 0.5,
        max_parallel: int = MAX_PARALLEL_SENDS,
        per_target: int = MAX_SENDS_PER_TARGET,
        per_user: int = MAX_SENDS_PER_USER,
    ) -> None:
        self.ctx = ctx
        self.poll_s = poll_s
        self.max_parallel, self.per_target, self.per_user = max_parallel, per_target, per_user
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vidmorph-deliver", daemon=True)
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="vidmorph-callback")
        self._lock = threading.Lock()
        #: deliveries being sent: id -> (the delivery, monotonic time its hold was last set)
        self._sending: dict[int, tuple[Delivery, float]] = {}

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
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self in Deliverer._instances:
            Deliverer._instances.remove(self)

    @property
    def hold_s(self) -> float:
        # Each phase of a send (connect, write, read) is bounded by callback_timeout_s.
        return self.ctx.settings.callback_timeout_s * 4 + 5

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.renew_holds()
                sent = self.deliver_due(wait=False)
            except Exception:
                log.exception("callback delivery loop failed; retrying")
                sent = 0
            if not sent:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def renew_holds(self) -> None:
        """Extend the hold of every send running for half a hold or more (this loop comes
        round every poll at least), so that no hold lapses while its send still runs."""
        now = time.monotonic()
        with self._lock:
            renew = [d for d, held_at in self._sending.values() if now - held_at >= self.hold_s / 2]
        if not renew:
            return
        self.ctx.deliveries.extend_hold([(d.id, d.attempts) for d in renew], self.hold_s)
        with self._lock:  # only once held anew: a failed write is tried again next round
            for d in renew:
                if d.id in self._sending:
                    self._sending[d.id] = (d, now)

    def deliver_due(self, wait: bool = True) -> int:
        """Claim what free threads can send now and start sending; with `wait`, return only
        once those sends are done (tests, one-shot tools)."""
        with self._lock:
            free = self.max_parallel - len(self._sending)
            in_flight = Counter((d.user_id, target_of(d.url)) for d, _ in self._sending.values())
        if free <= 0:
            return 0
        claimed_at = time.monotonic()
        due = self.ctx.deliveries.claim_due(
            free,
            self.hold_s,
            per_target=self.per_target,
            per_user=self.per_user,
            in_flight=in_flight,
        )
        futures = []
        with self._lock:
            for d in due:
                self._sending[d.id] = (d, claimed_at)
        for d in due:
            futures.append(self._pool.submit(self._send_and_release, d))
        if wait:
            for future in futures:
                future.result()
        return len(due)

    def _send_and_release(self, d: Delivery) -> None:
        try:
            self._deliver(d)
        except Exception:
            log.exception("callback %s for task %s failed unexpectedly", d.id, d.task_uuid)
        finally:
            with self._lock:
                self._sending.pop(d.id, None)
            # A slot is free: look for more now, not at the next poll.
            self._wake.set()

    def _count(self, outcome: str) -> None:
        try:
            self.ctx.metrics.add("vidmorph_callback_deliveries_total", {"outcome": outcome})
            if outcome != "delivered":
                self.ctx.metrics.add("vidmorph_callback_failures_total", {})
        except Exception:
            log.exception("could not count a callback delivery")

    def _deliver(self, d: Delivery) -> None:
        user = self.ctx.users.get(d.user_id)
        if user is None:
            self.ctx.deliveries.dropped(d.id, "user no longer exists")
            self._count("dropped")
            return
        result = self.ctx.sender.send(
            d.url, d.body, secret=user.webhook_secret, msg_id=f"msg_{d.task_uuid}_{d.id}"
        )
        if result.ok:
            self.ctx.deliveries.delivered(d.id)
            self._count("delivered")
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
            self._count("retried")
        else:
            log.warning("callback %s for task %s dropped: %s", d.id, d.task_uuid, error)
            self.ctx.deliveries.dropped(d.id, error)
            self._count("dropped")
