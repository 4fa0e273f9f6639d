"""What /readyz and /metrics report: the dependencies' health and the fleet's figures.

Every figure comes from the database (task counts, queue depth per engine, live workers, and the
counters and histograms that `store/metrics.py` keeps), so any API process of the fleet answers
a scrape with the same, complete numbers, whichever processes ran the work.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from vidmorph.domain.states import TaskStatus
from vidmorph.service import fleet
from vidmorph.service.context import AppContext
from vidmorph.store.metrics import DURATION_BUCKETS_S

log = logging.getLogger(__name__)

_HELP = {
    "vidmorph_queue_wait_seconds": "Seconds from admission to a worker starting the task.",
    "vidmorph_task_duration_seconds": "Seconds a task ran, from claim to its end.",
    "vidmorph_stage_duration_seconds": "Seconds each stage of a run took (decode, engine, encode).",
    "vidmorph_callback_deliveries_total": "Callback sends by outcome.",
    "vidmorph_callback_failures_total": "Callback sends that failed (retried or dropped).",
}
_pool = ThreadPoolExecutor(4, thread_name_prefix="vidmorph-ready")
#: the check of each dependency still running, per context: one at a time each, so a store
#: that hangs occupies one thread, and the other dependencies' checks still get theirs
_in_flight: dict[tuple[int, str], Future[object]] = {}
_in_flight_lock = threading.Lock()


def readiness(ctx: AppContext, timeout_s: float = 3.0) -> dict[str, str]:
    """'ok' or what went wrong, for the database, the broker (if any) and the storage."""
    checks: dict[str, Callable[[], object]] = {
        "database": ctx.db.ping,
        "storage": ctx.storage.check,
    }
    ping = getattr(ctx.dispatcher, "ping", None)
    if ping is not None:
        checks["broker"] = ping
    futures: dict[str, Future[object]] = {}
    with _in_flight_lock:
        for name, check in checks.items():
            running = _in_flight.get((id(ctx), name))
            if running is None or running.done():
                running = _pool.submit(check)
                _in_flight[(id(ctx), name)] = running
            futures[name] = running
    report = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            report[name] = "ok"
        except FutureTimeout:
            report[name] = f"no answer in {timeout_s:.0f} s"
        except Exception as exc:
            report[name] = f"unreachable: {type(exc).__name__}"
            log.warning("readiness: %s unreachable: %s", name, exc)
    return report


class FleetCollector(Collector):
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx = self.ctx
        tasks = GaugeMetricFamily(
            "vidmorph_tasks", "Tasks by status and engine.", labels=["status", "engine"]
        )
        depth = GaugeMetricFamily(
            "vidmorph_queue_depth", "PENDING tasks waiting per engine.", labels=["engine"]
        )
        by_key: dict[tuple[str, str], int] = defaultdict(int)
        waiting: dict[str, int] = defaultdict(int)
        for status, task_type, n in ctx.tasks.counts():
            engine = ctx.engine_name(task_type)
            by_key[(status, engine)] += n
            if status == TaskStatus.PENDING.value:
                waiting[engine] += n
        for (status, engine), n in sorted(by_key.items()):
            tasks.add_metric([status, engine], n)
        for engine in sorted({*ctx.settings.engines, *waiting}):
            depth.add_metric([engine], waiting.get(engine, 0))
        yield tasks
        yield depth
        yield self._workers()
        yield from self._series()

    def _workers(self) -> Metric:
        live = GaugeMetricFamily(
            "vidmorph_workers_live", "Worker processes reporting in, per engine.", labels=["engine"]
        )
        counts: dict[str, int] = defaultdict(int)
        for w in fleet.live_workers(self.ctx, max_age_s=0):
            for engine in fleet.engines_of(w):
                counts[engine] += 1
        for engine, n in sorted(counts.items()):
            live.add_metric([engine], n)
        return live

    def _series(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for name, labels, data in self.ctx.metrics.all():
            keys = sorted(labels)
            if "counts" in data:
                family = families.setdefault(
                    name, HistogramMetricFamily(name, _HELP.get(name, name), labels=keys)
                )
                bounds = [str(float(b)) for b in DURATION_BUCKETS_S] + ["+Inf"]
                counts = [*data["counts"], data["count"]]
                assert isinstance(family, HistogramMetricFamily)
                family.add_metric(
                    [labels[k] for k in keys],
                    list(zip(bounds, counts, strict=True)),
                    data["sum"],
                )
            else:
                short = name.removesuffix("_total")
                family = families.setdefault(
                    name, CounterMetricFamily(short, _HELP.get(name, name), labels=keys)
                )
                assert isinstance(family, CounterMetricFamily)
                family.add_metric([labels[k] for k in keys], data["value"])
        yield from families.values()


def registry_for(ctx: AppContext) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(ctx))
    return registry
