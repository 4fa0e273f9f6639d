"""The fleet as API processes see it, from what workers publish in the registry: live workers
per engine, the slots they offer, the device memory they have."""

from __future__ import annotations

import time

from vidmorph.service.context import AppContext
from vidmorph.store.workers import WorkerReport

#: a worker is live while its last report is younger than this many heartbeats
LIVE_BEATS = 3.0
_cache: dict[int, tuple[float, list[WorkerReport]]] = {}


def live_workers(ctx: AppContext, max_age_s: float = 1.0) -> list[WorkerReport]:
    """Live workers, read at most once per `max_age_s` per process (polls ask for the ETA)."""
    now = time.monotonic()
    hit = _cache.get(id(ctx))
    if hit is None or now - hit[0] > max_age_s:
        hit = (now, ctx.workers.live(LIVE_BEATS * ctx.settings.worker_heartbeat_s))
        _cache[id(ctx)] = hit
    return hit[1]


def engines_of(worker: WorkerReport) -> list[str]:
    # In-process pools list every engine they run, comma-separated.
    return worker.engine.split(",")


def serves(worker: WorkerReport, engine: str) -> bool:
    return engine in engines_of(worker)


def slots(ctx: AppContext, engine: str) -> int:
    """Tasks of `engine` the fleet can run at once."""
    return sum(w.concurrency for w in live_workers(ctx) if serves(w, engine))


def memory_budget_bytes(ctx: AppContext, engine: str) -> int | None:
    """The most device memory a live worker of `engine` has free; None when none reported."""
    free = [
        w.memory_free_bytes
        for w in live_workers(ctx)
        if serves(w, engine) and w.memory_free_bytes is not None
    ]
    return max(free) if free else None
