"""WorkerRegistry: every worker process reports in here (engine, device, memory, what it runs).

API processes read it for the fleet's view: live workers in /metrics, the slots behind
`estimatedTimeToStartSeconds`, and the device memory the pre-flight check measures against
when the engine runs on other machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from vidmorph.domain.clock import utcnow
from vidmorph.store.db import Database
from vidmorph.store.tables import workers


@dataclass(frozen=True)
class WorkerReport:
    id: str
    hostname: str
    pid: int
    #: "inprocess" (threads inside `vidmorph serve`) or "celery" (`vidmorph worker`)
    kind: str
    engine: str
    device: str
    concurrency: int
    memory_total_bytes: int | None
    memory_free_bytes: int | None
    running: tuple[str, ...]
    started_at: datetime
    seen_at: datetime


class WorkerRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def beat(self, report: WorkerReport) -> None:
        """Register the worker, or refresh its row."""
        values = {
            "hostname": report.hostname[:255],
            "pid": report.pid,
            "kind": report.kind,
            "engine": report.engine[:200],
            "device": report.device[:50],
            "concurrency": report.concurrency,
            "memory_total_bytes": report.memory_total_bytes,
            "memory_free_bytes": report.memory_free_bytes,
            "running": list(report.running),
            "seen_at": report.seen_at,
        }
        with self.db.write() as conn:
            conn.execute(
                self.db.insert_ignore(workers).values(
                    id=report.id, started_at=report.started_at, **values
                )
            )
            conn.execute(update(workers).where(workers.c.id == report.id).values(**values))

    def leave(self, worker_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(workers).where(workers.c.id == worker_id))

    def live(self, within_s: float) -> list[WorkerReport]:
        """Workers seen in the last `within_s` seconds."""
        since = utcnow() - timedelta(seconds=within_s)
        with self.db.read() as conn:
            rows = conn.execute(
                select(workers).where(workers.c.seen_at >= since).order_by(workers.c.id)
            ).all()
        return [
            WorkerReport(
                id=r.id,
                hostname=r.hostname,
                pid=r.pid,
                kind=r.kind,
                engine=r.engine,
                device=r.device,
                concurrency=r.concurrency,
                memory_total_bytes=r.memory_total_bytes,
                memory_free_bytes=r.memory_free_bytes,
                running=tuple(r.running or ()),
                started_at=r.started_at,
                seen_at=r.seen_at,
            )
            for r in rows
        ]

    def prune(self, older_than_s: float) -> int:
        """Forget workers silent for longer than `older_than_s` (killed without leaving)."""
        before = utcnow() - timedelta(seconds=older_than_s)
        with self.db.write() as conn:
            return int(conn.execute(delete(workers).where(workers.c.seen_at < before)).rowcount)
