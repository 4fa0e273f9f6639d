"""InProcessDispatcher: a bounded pool of worker threads inside the API process.

Also runs the sweeper, which re-queues tasks whose worker died, queues callbacks a crash lost,
and hands every PENDING task (including ones another process left behind) back to the pool.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
import uuid

from vidmorph.service import recover
from vidmorph.service.context import AppContext
from vidmorph.service.execute import run_task

log = logging.getLogger(__name__)

_STOP = "__stop__"


class InProcessDispatcher:
    def __init__(self, ctx: AppContext, workers: int) -> None:
        self.ctx = ctx
        self.workers = workers
        #: identifies this process's leases; a restarted process gets a new one
        # Bounded to fit the 64-character lease column whatever the host name.
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._queue: queue.PriorityQueue[tuple[int, int, str]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        #: ids waiting in the queue, so the periodic re-submit never queues one twice
        self._queued: set[str] = set()
        self._queued_lock = threading.Lock()

    def submit(self, task_id: str, priority: int = 0) -> None:
        if self.workers <= 0:
            return
        with self._queued_lock:
            if task_id in self._queued:
                return
            self._queued.add(task_id)
        self._queue.put((priority, next(self._seq), task_id))

    def start(self) -> None:
        if self.workers > 0:
            # Load the engine before taking work: a bad VIDMORPH_ENGINE stops start-up with a
            # clear error instead of failing every task later.
            self.ctx.engine()
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"vidmorph-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        sweeper = threading.Thread(target=self._sweep, name="vidmorph-sweeper", daemon=True)
        sweeper.start()
        self._threads.append(sweeper)
        if self.workers > 0:
            count = recover.resubmit_pending(self.ctx)
            if count:
                log.info("resubmitted %d pending tasks", count)

    def close(self) -> None:
        self._stop.set()
        for _ in range(self.workers):
            self._queue.put((-1, -1, _STOP))
        for thread in self._threads:
            thread.join(timeout=30)

    def _work(self) -> None:
        while True:
            _, _, task_id = self._queue.get()
            if task_id == _STOP:
                return
            with self._queued_lock:
                self._queued.discard(task_id)
            try:
                # One owner per claim: if a lease lapses and this same process claims the task
                # again, the stale run can no longer write to (or fail) the new one.
                run_task(self.ctx, task_id, f"{self.owner}:{uuid.uuid4().hex[:6]}")
            except Exception:
                log.exception("worker failed on task %s", task_id)

    def _sweep(self) -> None:
        while not self._stop.wait(self.ctx.settings.recover_interval_s):
            try:
                recover.sweep_lapsed(self.ctx)
                recover.sweep_lost_callbacks(self.ctx)
                if self.workers > 0:
                    # PENDING tasks another process admitted and then died holding in its
                    # memory queue: claims are conditional, so re-submitting is harmless.
                    recover.resubmit_pending(self.ctx)
            except Exception:
                log.exception("lease sweep failed")
