"""MetricStore: fleet-wide Prometheus counters and histograms kept in the database.

Tasks run in Celery workers on other machines and HTTP processes come and go, so a counter
kept in one process's memory would show only that process's share and reset on restart. Each
series is one row whose JSON the observing process updates under the row's lock; /metrics on
any API process reads them all and so shows the same, monotonic figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update

from vidmorph.store.db import Database
from vidmorph.store.tables import metric_series

#: seconds: from sub-second stages of the preview engine to hour-long GPU jobs
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def label_text(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        """Add to a counter."""
        self._update(name, labels, {"value": 0.0}, lambda d: {"value": d["value"] + amount})

    def observe(
        self,
        name: str,
        labels: Mapping[str, str],
        value: float,
        buckets: Sequence[float] = DURATION_BUCKETS_S,
    ) -> None:
        """Add one observation to a histogram (cumulative buckets, as Prometheus has them)."""

        def change(d: dict[str, Any]) -> dict[str, Any]:
            counts = [
                c + (1 if value <= b else 0) for c, b in zip(d["counts"], buckets, strict=True)
            ]
            return {"counts": counts, "sum": d["sum"] + value, "count": d["count"] + 1}

        empty = {"counts": [0] * len(buckets), "sum": 0.0, "count": 0}
        self._update(name, labels, empty, change)

    def _update(
        self, name: str, labels: Mapping[str, str], empty: dict[str, Any], change: Any
    ) -> None:
        key = label_text(labels)
        where = (metric_series.c.name == name) & (metric_series.c.labels == key)
        with self.db.write() as conn:
            conn.execute(
                self.db.insert_ignore(metric_series).values(name=name, labels=key, data=empty)
            )
            data = conn.execute(
                select(metric_series.c.data).where(where).with_for_update()
            ).scalar_one()
            conn.execute(update(metric_series).where(where).values(data=change(data)))

    def all(self) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        with self.db.read() as conn:
            rows = conn.execute(select(metric_series).order_by(metric_series.c.name)).all()
        return [(r.name, json.loads(r.labels), r.data) for r in rows]
