"""Task and asset rows: a row as a `Task` or an `Asset`, a `Task` as insert values, the
output assets of tasks, and the deletion of finished tasks' rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from vidmorph.domain.models import Asset, GenerationParams, MediaMeta, Task
from vidmorph.domain.states import IN_FLIGHT, TaskStatus
from vidmorph.store.tables import assets, deliveries, tasks
from vidmorph.store.usage import UsageStore

IN_FLIGHT_VALUES = [s.value for s in IN_FLIGHT]


def to_asset(row: Any) -> Asset:
    """An asset from its row (or any object with its columns as attributes)."""
    meta = MediaMeta(**row.meta) if row.meta else None
    return Asset(
        uuid=row.uuid,
        user_id=row.user_id,
        email=row.email,
        name=row.name,
        media_type=row.media_type,
        content_type=row.content_type,
        ext=row.ext,
        blob_key=row.blob_key,
        preview_key=row.preview_key,
        size_bytes=row.size_bytes,
        meta=meta,
        is_user_upload=row.is_user_upload,
        task_uuid=row.task_uuid,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_task(row: Any, artifacts: tuple[Asset, ...] = ()) -> Task:
    """A task from its row (or any object with its columns as attributes)."""
    return Task(
        uuid=row.uuid,
        user_id=row.user_id,
        email=row.email,
        task_type=row.task_type,
        status=TaskStatus(row.status),
        params=GenerationParams(**row.params),
        reply_url=row.reply_url,
        reply_ref=row.reply_ref,
        credits=row.credits,
        progress_ratio=row.progress_ratio,
        progress_text=row.progress_text,
        error=row.error,
        attempts=row.attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        artifacts=artifacts,
    )


def task_values(task: Task) -> dict[str, Any]:
    return {
        "uuid": task.uuid,
        "user_id": task.user_id,
        "email": task.email,
        "task_type": task.task_type,
        "status": task.status.value,
        "priority": task.params.priority,
        # Its fields are plain values: a copy of them, without asdict's deep copy per field.
        "params": dict(vars(task.params)),
        "reply_url": task.reply_url,
        "reply_ref": task.reply_ref,
        "credits": task.credits,
        "error": task.error,
        "attempts": 0,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "finished_at": task.finished_at,
    }


def task_artifacts(conn: Connection, uuid: str) -> tuple[Asset, ...]:
    return artifacts_of(conn, [uuid]).get(uuid, ())


def artifacts_of(conn: Connection, uuids: list[str]) -> dict[str, tuple[Asset, ...]]:
    """The output assets of several tasks in one query, by task uuid."""
    if not uuids:
        return {}
    rows = conn.execute(
        select(assets).where(assets.c.task_uuid.in_(uuids)).order_by(assets.c.created_at)
    ).all()
    found: dict[str, list[Asset]] = {}
    for row in rows:
        found.setdefault(row.task_uuid, []).append(to_asset(row))
    return {uuid: tuple(items) for uuid, items in found.items()}


def delete_tasks(conn: Connection, usage: UsageStore, doomed: list[Task], why: str) -> list[Task]:
    """Delete finished tasks' rows and their outputs' rows, fold each into the usage figures
    and drop its callbacks still due (they would carry links that no longer work; `why` says
    so). Returns the tasks this call deleted: one that a deletion racing it removed first is
    neither folded nor returned, so no task is counted twice and one caller is told of it."""
    by_uuid = {t.uuid: t for t in doomed}
    gone = list(
        conn.execute(
            delete(tasks).where(tasks.c.uuid.in_(by_uuid)).returning(tasks.c.uuid)
        ).scalars()
    )
    if gone:
        conn.execute(delete(assets).where(assets.c.task_uuid.in_(gone)))
        for uuid in gone:
            usage.fold(conn, by_uuid[uuid])
        conn.execute(
            update(deliveries)
            .where(deliveries.c.task_uuid.in_(gone), deliveries.c.state == "pending")
            .values(state="dropped", last_error=why)
        )
    return [by_uuid[uuid] for uuid in gone]
