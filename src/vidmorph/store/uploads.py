"""Ephemeral uploads of Runway's API (`POST /v1/uploads`): a `runway://` URI for 24 hours.

A row is made when the client asks for an upload target; the bytes arrive later at that target
(Vidmorph's signed form endpoint, or S3 by a presigned POST) under `storage_key`. The first
task that names the URI turns the bytes into an asset (probed like any upload) and records it
here, so later tasks reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from vidmorph.store.db import Database
from vidmorph.store.tables import uploads


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
