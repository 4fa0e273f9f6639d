"""Dispatcher: hands a task id to whatever runs tasks (in-process threads or Celery)."""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    """Messages carry ids only, so a duplicate or replayed submit is a harmless no-op.

    `engine` names the engine that runs the task, which picks its queue in a fleet.
    `resubmit` is the sweeper's: it may skip tasks that were sent recently.
    """

    #: whether this process runs tasks itself (and so loads an engine)
    runs_tasks: bool
    #: whether `submit` only queues in this process (no broker to reach: an event loop may
    #: call it)
    submits_in_process: bool

    def submit(self, task_id: str, priority: int, engine: str) -> None: ...

    def resubmit(self, task_id: str, priority: int, engine: str, waiting_s: float) -> bool: ...

    def start(self) -> None: ...

    def close(self) -> None: ...
