"""Presence: a worker process registers in the database and reports in from its own thread.

Each report carries the engine, the device and its memory, the worker's concurrency and the
tasks it is running, so any API process can see the fleet (/metrics, ETA slots, the pre-flight
memory check) without talking to the workers themselves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator

from vidmorph.domain.clock import utcnow
from vidmorph.service.context import AppContext
from vidmorph.store.workers import WorkerReport

log = logging.getLogger(__name__)


def worker_id(kind: str) -> str:
    """Unique per process start; bounded to fit lease-owner and registry columns."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{kind[:3]}{uuid.uuid4().hex[:8]}"


def device_memory(device: str) -> tuple[int | None, int | None]:
    """(total, free) bytes of the device: the GPU's for cuda, the host's RAM for cpu."""
    if device.startswith("cuda") and "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            index = int(device.partition(":")[2] or 0)
            free, total = torch.cuda.mem_get_info(index)
            # What the engine's own process can still use: free plus torch's cached blocks.
            return int(total), int(free) + int(torch.cuda.memory_reserved(index))
        return None, None
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError):
        return None, None


class RunningTasks:
    """The ids of the tasks a worker process is running now, for its reports."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self, task_id: str) -> Iterator[None]:
        with self._lock:
            self._ids.add(task_id)
        try:
            yield
        finally:
            with self._lock:
                self._ids.discard(task_id)

    def now(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)


class Presence:
    def __init__(
        self,
        ctx: AppContext,
        *,
        wid: str,
        kind: str,
        engine: str,
        concurrency: int,
        running: Callable[[], list[str]],
    ) -> None:
        self.ctx, self.id, self.kind, self.engine = ctx, wid, kind, engine
        self.concurrency, self._running = concurrency, running
        self._started = utcnow()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vidmorph-presence", daemon=True)

    def report(self) -> WorkerReport:
        device = self.ctx.settings.engine_device
        total, free = device_memory(device)
        return WorkerReport(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            kind=self.kind,
            engine=self.engine,
            device=device,
            concurrency=self.concurrency,
            memory_total_bytes=total,
            memory_free_bytes=free,
            running=tuple(self._running()),
            started_at=self._started,
            seen_at=utcnow(),
        )

    def beat(self) -> None:
        self.ctx.workers.beat(self.report())

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.ctx.settings.worker_heartbeat_s):
            try:
                self.beat()
            except Exception:
                log.exception("worker heartbeat failed; retrying")

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        try:
            self.ctx.workers.leave(self.id)
        except Exception:
            log.exception("could not unregister worker %s", self.id)
