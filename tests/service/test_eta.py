"""Queue-time estimates from position, running tasks and measured speed."""

from __future__ import annotations

from vidmorph.scheduler.eta import estimated_start_s, seconds_per_output_second


def test_next_task_on_a_free_worker_starts_now() -> None:
    assert estimated_start_s(1, running=0, slots=1, task_s=30) == 0
    assert estimated_start_s(2, running=0, slots=2, task_s=30) == 0


def test_tasks_ahead_add_whole_rounds_of_work() -> None:
    assert estimated_start_s(1, running=1, slots=1, task_s=30) == 30
    assert estimated_start_s(3, running=1, slots=1, task_s=30) == 90
    assert estimated_start_s(3, running=2, slots=2, task_s=30) == 60


def test_speed_is_the_median_of_recent_runs_or_the_default() -> None:
    assert seconds_per_output_second([], default=1.5) == 1.5
    assert seconds_per_output_second([(10, 10), (30, 10), (20, 10)], default=9) == 2.0
