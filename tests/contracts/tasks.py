"""Tasks for the store's contract suites, and admission with the suites' usual limits."""

from __future__ import annotations

from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import GenerationParams, Task
from vidmorph.domain.states import TaskStatus
from vidmorph.store.tasks import TaskStore

EMAIL = "a@example.com"


def new_task(user_id: int = 1, credits: int = 100, explore: bool = False) -> Task:
    now = utcnow()
    params = GenerationParams(
        asset_uuid=ids.new_uuid(),
        text_prompt="night",
        structure_transformation=3.0,
        seconds=10,
        seed=7,
        explore_mode=explore,
        width=1280,
        height=768,
    )
    return Task(
        uuid=ids.new_uuid(),
        user_id=user_id,
        email=EMAIL,
        task_type="gen3a",
        status=TaskStatus.PENDING,
        params=params,
        reply_url=None,
        reply_ref="ref",
        credits=credits,
        progress_ratio=None,
        progress_text=None,
        error=None,
        attempts=0,
        lease_owner=None,
        lease_expires_at=None,
        created_at=now,
        updated_at=now,
    )


def admit(tasks: TaskStore, task: Task, max_jobs: int = 3, **kw: object) -> tuple[Task, bool]:
    admitted = tasks.admit(task, max_jobs=max_jobs, max_queue_depth=100, **kw)  # type: ignore[arg-type]
    return admitted.task, admitted.created
