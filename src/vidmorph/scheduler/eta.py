"""Estimated time to start: queue position times the measured speed of recent runs."""

from __future__ import annotations

import math
import statistics


def seconds_per_output_second(recent_runs: list[tuple[float, float]], default: float) -> float:
    """Median wall seconds per output second of recent runs; `default` before any ran."""
    rates = [wall / out for wall, out in recent_runs if out > 0]
    return statistics.median(rates) if rates else default


def estimated_start_s(place_in_line: int, running: int, slots: int, task_s: float) -> int:
    """Seconds until a PENDING task starts, if each task ahead takes `task_s`.

    `place_in_line` is 1 for the next task to start; `running` tasks hold `slots` workers.
    """
    if slots <= 0:
        return 0
    ahead = running + place_in_line - 1
    if ahead < slots:
        return 0
    rounds = math.ceil((ahead - slots + 1) / slots)
    return math.ceil(rounds * task_s)
