"""InProcessDispatcher: a bounded pool of worker threads inside the API process (the embedded
default). It registers as a worker, so the fleet view and the ETA count its threads."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import uuid

from vidmorph.service.context import AppContext
from vidmorph.service.execute import run_task
from vidmorph.workers.presence import Presence, RunningTasks, worker_id

log = logging.getLogger(__name__)

_STOP = "__stop__"


class InProcessDispatcher:
    def __init__(self, ctx: AppContext, workers: int) -> None:
        self.ctx = ctx
        self.workers = workers
        self.runs_tasks = workers > 0
        self.submits_in_process = True
        #: identifies this process's leases; a restarted process gets a new one
        self.owner = worker_id("inprocess")
        self._queue: queue.PriorityQueue[tuple[int, int, str]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        #: ids waiting in the queue, so the periodic re-submit never queues one twice
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._running = RunningTasks()
        self._presence: Presence | None = None

    def submit(self, task_id: str, priority: int = 0, engine: str = "") -> None:
        self.resubmit(task_id, priority, engine, 0.0)

    def resubmit(self, task_id: str, priority: int, engine: str, waiting_s: float) -> bool:
        if self.workers <= 0:
            return False
        with self._lock:
            if task_id in self._queued:
                return False
            self._queued.add(task_id)
        self._queue.put((priority, next(self._seq), task_id))
        return True

    def start(self) -> None:
        if self.workers <= 0:
            return
        # Load the engine before taking work: a bad VIDMORPH_ENGINE stops start-up with a
        # clear error instead of failing every task later.
        s = self.ctx.settings
        for name in s.engines:
            self.ctx.engine(name)
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"vidmorph-worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._presence = Presence(
            self.ctx,
            wid=self.owner,
            kind="inprocess",
            # In-process threads run every engine the settings route to.
            engine=",".join(s.engines),
            concurrency=self.workers,
            running=self._running.now,
        )
        self._presence.start()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put((-1, -1, _STOP))
        for thread in self._threads:
            thread.join(timeout=30)
        if self._presence is not None:
            self._presence.close()

    def _work(self) -> None:
        while True:
            _, _, task_id = self._queue.get()
            if task_id == _STOP:
                return
            with self._lock:
                self._queued.discard(task_id)
            try:
                with self._running.running(task_id):
                    # One owner per claim: if a lease lapses and this same process claims the
                    # task again, the stale run can no longer write to (or fail) the new one.
                    run_task(self.ctx, task_id, f"{self.owner}:{uuid.uuid4().hex[:6]}")
            except Exception:
                log.exception("worker failed on task %s", task_id)
