"""AssetStore: uploaded and generated media, always looked up within one user."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, delete, insert, select

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.models import Account, Asset
from vidmorph.domain.states import IN_FLIGHT
from vidmorph.store.accounts import to_account
from vidmorph.store.db import Database
from vidmorph.store.joins import prefixed, split
from vidmorph.store.prepared import Statements, arg
from vidmorph.store.tables import accounts, assets, tasks
from vidmorph.store.task_rows import to_asset


def asset_values(asset: Asset) -> dict[str, Any]:
    meta = asset.meta
    return {
        "uuid": asset.uuid,
        "user_id": asset.user_id,
        "email": asset.email,
        "name": asset.name,
        "media_type": asset.media_type,
        "content_type": asset.content_type,
        "ext": asset.ext,
        "blob_key": asset.blob_key,
        "preview_key": asset.preview_key,
        "size_bytes": asset.size_bytes,
        "meta": None if meta is None else meta.__dict__.copy(),
        "is_user_upload": asset.is_user_upload,
        "task_uuid": asset.task_uuid,
        "created_at": asset.created_at,
        "updated_at": asset.updated_at,
    }


def insert_asset(conn: Connection, asset: Asset) -> None:
    conn.execute(insert(assets).values(**asset_values(asset)))


def _with_account_sql() -> Select[Any]:
    owner = (accounts.c.user_id == assets.c.user_id) & (accounts.c.email == assets.c.email)
    return (
        select(*assets.c, *prefixed(accounts, "account_"))
        .select_from(assets.outerjoin(accounts, owner))
        .where(assets.c.user_id == arg("p_user"), assets.c.uuid == arg("p_uuid"))
    )


class AssetStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = Statements(db.engine.dialect, {"with_account": _with_account_sql})

    def add(self, asset: Asset) -> None:
        with self.db.write() as conn:
            insert_asset(conn, asset)

    def get(self, user_id: int, uuid: str) -> Asset | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(assets).where(assets.c.user_id == user_id, assets.c.uuid == uuid)
            ).one_or_none()
        return None if row is None else to_asset(row)

    def with_account(self, user_id: int, uuid: str) -> tuple[Asset, Account | None] | None:
        """The user's asset and the account it belongs to, joined in one prepared statement
        (admission reads it first)."""
        with self.db.raw_read() as conn:
            values = self.sql["with_account"].values_or_none(conn, p_user=user_id, p_uuid=uuid)
        if values is None:
            return None
        asset, account = split(values, (assets, accounts))
        assert asset is not None
        return to_asset(asset), None if account is None else to_account(account)

    def page(
        self, user_id: int, email: str, media_type: str | None, offset: int, limit: int
    ) -> list[Asset]:
        query = select(assets).where(assets.c.user_id == user_id, assets.c.email == email)
        if media_type:
            query = query.where(assets.c.media_type == media_type)
        query = (
            query.order_by(assets.c.created_at.desc(), assets.c.uuid).offset(offset).limit(limit)
        )
        with self.db.read() as conn:
            return [to_asset(r) for r in conn.execute(query).all()]

    def by_uuids(self, user_id: int, uuids: list[str]) -> dict[str, Asset]:
        """Several of the user's assets in one query, by uuid (missing ones left out)."""
        if not uuids:
            return {}
        query = select(assets).where(assets.c.user_id == user_id, assets.c.uuid.in_(uuids))
        with self.db.read() as conn:
            return {r.uuid: to_asset(r) for r in conn.execute(query).all()}

    def delete(self, user_id: int, uuid: str) -> Asset | None:
        """Remove an upload's row and return it, so the caller can delete its blobs. A task's
        output is not removed here (its task's deletion removes it): every process's poll
        cache (service.view_cache) reuses a view while the task's row is unchanged, and the
        view lists the task's outputs. Nor the input of a task still to run (Conflict): it
        would fail for want of it. The tasks' queue index narrows the read to in-flight ones."""
        with self.db.write() as conn:
            row = conn.execute(
                select(assets).where(
                    assets.c.user_id == user_id, assets.c.uuid == uuid, assets.c.task_uuid.is_(None)
                )
            ).one_or_none()
            if row is None:
                return None
            using = conn.execute(
                select(tasks.c.uuid)
                .where(tasks.c.status.in_([s.value for s in IN_FLIGHT]), tasks.c.user_id == user_id)
                .where(tasks.c.params["asset_uuid"].as_string() == uuid)
                .limit(1)
            ).scalar()
            if using is not None:
                task_id = ids.format_id(user_id, row.email, "task", using)
                raise errors.Conflict(
                    f"Task {task_id} is still to run from this asset; cancel it (or wait for it"
                    " to finish) to delete it."
                )
            conn.execute(delete(assets).where(assets.c.uuid == uuid))
        return to_asset(row)
