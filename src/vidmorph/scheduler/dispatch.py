"""Dispatcher: hands a task id to whatever runs tasks (in-process threads or Celery)."""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    """Messages carry ids only, so a duplicate or replayed submit is a harmless no-op."""

    def submit(self, task_id: str, priority: int = 0) -> None: ...

    def start(self) -> None: ...

    def close(self) -> None: ...
