"""Runway API state: ephemeral uploads, and the upstream jobs of the Runway engine.

Ephemeral uploads of Runway's API (`POST /v1/uploads`): a `runway://` URI for 24 hours.

A row is made when the client asks for an upload target; the bytes arrive later at that target
(Vidmorph's signed form endpoint, or S3 by a presigned POST) under `storage_key`. The first
task that names the URI turns the bytes into an asset (probed like any upload) and records it
here, so later tasks reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from vidmorph.domain.clock import utcnow
from vidmorph.store.db import Database
from vidmorph.store.tables import uploads, upstream_jobs


@dataclass(frozen=True)
class Upload:
    uuid: str
    user_id: int
    filename: str
    storage_key: str
    asset_uuid: str | None
    created_at: datetime
    expires_at: datetime


class UploadStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, upload: Upload) -> None:
        with self.db.write() as conn:
            conn.execute(uploads.insert().values(**upload.__dict__))

    def get(self, uuid: str, user_id: int | None = None) -> Upload | None:
        query = select(uploads).where(uploads.c.uuid == uuid)
        if user_id is not None:
            query = query.where(uploads.c.user_id == user_id)
        with self.db.read() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else Upload(**row._mapping)

    def set_asset(self, uuid: str, asset_uuid: str) -> bool:
        """Record the upload's asset once; False when another request recorded one first."""
        with self.db.write() as conn:
            done = conn.execute(
                update(uploads)
                .where(uploads.c.uuid == uuid, uploads.c.asset_uuid.is_(None))
                .values(asset_uuid=asset_uuid)
            )
            return done.rowcount == 1


class UpstreamJobs:
    """Which upstream job runs a task (VIDMORPH_ENGINE=runway), so a restart resumes it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def remember(self, task_uuid: str, upstream_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                self.db.insert_ignore(upstream_jobs).values(
                    task_uuid=task_uuid, upstream_id=upstream_id, created_at=utcnow()
                )
            )

    def get(self, task_uuid: str) -> str | None:
        with self.db.read() as conn:
            found: str | None = conn.execute(
                select(upstream_jobs.c.upstream_id).where(upstream_jobs.c.task_uuid == task_uuid)
            ).scalar_one_or_none()
        return found
