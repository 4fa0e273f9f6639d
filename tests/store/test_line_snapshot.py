"""store.queue's line snapshot on a real SQLite file: tasks this process admits join the
cached line where they queue, whether they come last (the usual case) or ahead of older ones
(a better priority)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from vidmorph.store.db import Database
from vidmorph.store.queue import QueueFigures


@pytest.fixture
def figures(tmp_path: Path) -> Iterator[QueueFigures]:
    db = Database(f"sqlite:///{tmp_path / 'line.db'}")
    db.migrate()
    yield QueueFigures(db)
    db.close()


def test_admitted_tasks_keep_the_line_in_start_order(figures: QueueFigures) -> None:
    assert figures.snapshot().pending == []
    start = datetime(2026, 12, 6, 12, 0, 0)
    entries = [(p, start + timedelta(seconds=i), f"u{i:03d}") for i, p in enumerate([5] * 40)]
    entries += [(1, start + timedelta(seconds=100 + i), f"v{i:03d}") for i in range(10)]
    entries += [(9, start + timedelta(seconds=200 + i), f"w{i:03d}") for i in range(10)]
    order = entries[:40] + random.Random(7).sample(entries[40:], 20)  # newest first, then mixed
    for entry in order:
        figures.admitted(*entry)
    line = figures.snapshot()
    assert line.pending == sorted(entries)
    # the better priority starts first, the worse one last, each in its own arrival order
    assert line.place(*entries[40]) == 1
    assert line.place(*entries[0]) == 11
    assert line.place(*entries[-1]) == 60


def test_without_a_snapshot_an_admission_is_left_to_the_next_read(figures: QueueFigures) -> None:
    figures.admitted(5, datetime(2026, 12, 6), "u1")  # nothing cached yet: nothing to join
    assert figures.peek() is None
    assert figures.snapshot().pending == []  # the read sees the database, which has none
