"""Celery: the fleet's dispatcher (in API processes) and its workers (`vidmorph worker`).

Messages carry a task id and nothing else; the database stays the truth. One queue per engine
(`vidmorph.<engine>`), so a GPU box started with `--engine ltx` only takes LTX work. Explore-mode
tasks are sent with the broker's lowest priority, so they run after the others. Long GPU tasks
get prefetch 1 (a worker holds one message per free thread), late acks (a message is acked when
the task is done, so a worker that dies mid-task does not lose it) and a visibility timeout far
longer than any task (Redis never re-delivers a task that is still running). Re-delivery is not
where recovery lives anyway: a dead worker's lease lapses and the sweeper sends the task again,
and claims are conditional, so a duplicate message is a no-op.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any

from celery import Celery
from kombu import Exchange, Queue  # type: ignore[attr-defined]

from vidmorph.config import Settings
from vidmorph.engines.base import Engine
from vidmorph.service.context import AppContext
from vidmorph.service.execute import run_task
from vidmorph.upstream.base import Upstream
from vidmorph.workers.presence import Presence, RunningTasks, worker_id

log = logging.getLogger(__name__)

TASK_NAME = "vidmorph.run_task"
#: the broker's priority range; explore mode (our priority 1) goes to the far end of it
_BROKER_PRIORITIES = 10


def queue_name(engine: str) -> str:
    return "vidmorph." + re.sub(r"[^A-Za-z0-9_.-]", "_", engine)[:180]


def _is_amqp(url: str) -> bool:
    return url.split(":", 1)[0] in ("amqp", "amqps", "pyamqp")


def engine_queue(engine: str) -> Queue:
    name = queue_name(engine)
    # RabbitMQ needs a priority queue declared as such; Redis ignores the argument.
    return Queue(  # type: ignore[no-untyped-call]
        name,
        Exchange(name, type="direct"),  # type: ignore[no-untyped-call]
        routing_key=name,
        queue_arguments={"x-max-priority": _BROKER_PRIORITIES - 1},
    )


def broker_priority(settings: Settings, priority: int) -> int:
    """Our 0 (normal) / 1 (explore) as the broker's number: on Redis 0 is served first, on
    RabbitMQ the highest number is."""
    top = _BROKER_PRIORITIES - 1
    rank = min(max(priority, 0), 1) * top
    return top - rank if _is_amqp(settings.broker_url) else rank


def make_celery(settings: Settings) -> Celery:
    app = Celery("vidmorph", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_connection_timeout=3,
        # An admission must not hang on a broker that is down: one quick retry, then the task
        # (already committed) waits for the sweeper to send it again.
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_s,
            "priority_steps": list(range(_BROKER_PRIORITIES)),
            "queue_order_strategy": "priority",
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=False,
    )
    return app


class CeleryDispatcher:
    """API side: publishes task ids to the engine's queue; runs no engine itself."""

    runs_tasks = False
    submits_in_process = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_celery(settings)
        #: task id -> (monotonic time sent, times sent) for the sweeper's re-sends
        self._sent: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def submit(self, task_id: str, priority: int, engine: str) -> None:
        self.app.send_task(
            TASK_NAME,
            args=[task_id],
            queue=engine_queue(engine),
            priority=broker_priority(self.settings, priority),
        )
        with self._lock:
            times = self._sent.get(task_id, (0.0, 0))[1]
            if len(self._sent) > 50_000:
                self._sent.clear()
            self._sent[task_id] = (time.monotonic(), times + 1)

    def resubmit(self, task_id: str, priority: int, engine: str, waiting_s: float) -> bool:
        """Send again a task that has waited PENDING past `redispatch_s`, backing off (doubling
        up to an hour) so a long queue is not flooded with copies of the same id."""
        every_s = self.settings.redispatch_s
        if waiting_s < every_s:
            return False
        with self._lock:
            sent_at, times = self._sent.get(task_id, (0.0, 0))
        if times and time.monotonic() - sent_at < min(every_s * 2 ** min(times - 1, 12), 3600):
            return False
        self.submit(task_id, priority, engine)
        return True

    def ping(self, timeout_s: float = 2.0) -> None:
        """Raise unless the broker accepts a connection now (for /readyz)."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.app.close()


def worker_app(
    ctx: AppContext, engine_name: str, engine: Engine | Upstream, owner: str
) -> tuple[Celery, RunningTasks]:
    """The Celery app of a `vidmorph worker`: one task, which runs `run_task` on `engine`."""
    app = make_celery(ctx.settings)
    running = RunningTasks()

    @app.task(name=TASK_NAME, ignore_result=True)  # type: ignore[untyped-decorator]
    def run(task_id: str) -> None:
        with running.running(task_id):
            run_task(ctx, task_id, f"{owner}:{uuid.uuid4().hex[:6]}", engine=engine)

    app.conf.task_queues = [engine_queue(engine_name)]
    return app, running


def run_worker(ctx: AppContext, engine_name: str, concurrency: int) -> None:
    """Load the engine once, register, and consume the engine's queue until stopped."""
    engine = ctx.engine(engine_name)
    owner = worker_id("celery")
    app, running = worker_app(ctx, engine_name, engine, owner)
    presence = Presence(
        ctx,
        wid=owner,
        kind="celery",
        engine=engine_name,
        concurrency=concurrency,
        running=running.now,
    )
    presence.start()
    argv: list[Any] = [
        "worker",
        "--pool=threads",
        f"--concurrency={concurrency}",
        f"--queues={queue_name(engine_name)}",
        f"--hostname={owner.replace(':', '-')}",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    log.info("worker %s consuming %s with %d threads", owner, queue_name(engine_name), concurrency)
    try:
        app.worker_main(argv=argv)
    finally:
        presence.close()
