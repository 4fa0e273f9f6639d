"""The composition root: the one place that chooses concrete classes from Settings."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from vidmorph.callbacks.sender import CallbackSender
from vidmorph.config import Settings
from vidmorph.moderation.moderator import Moderator
from vidmorph.scheduler.dispatch import Dispatcher
from vidmorph.service.context import AppContext
from vidmorph.service.notify import Deliverer
from vidmorph.service.sweeper import Sweeper
from vidmorph.storage.base import BlobStorage
from vidmorph.storage.local import LocalStorage
from vidmorph.storage.scratch import process_scratch
from vidmorph.store.accounts import AccountStore
from vidmorph.store.assets import AssetStore
from vidmorph.store.db import Database
from vidmorph.store.deliveries import DeliveryStore
from vidmorph.store.leases import LeaseStore
from vidmorph.store.metrics import MetricStore
from vidmorph.store.secrets import URL_SIGNING_KEY, SecretStore
from vidmorph.store.tasks import TaskStore
from vidmorph.store.uploads import UploadStore, UpstreamJobs
from vidmorph.store.users import UserStore
from vidmorph.store.workers import WorkerRegistry
from vidmorph.workers.inprocess import InProcessDispatcher
from vidmorph.workers.presence import worker_id

log = logging.getLogger(__name__)


@dataclass
class Services:
    ctx: AppContext
    dispatcher: Dispatcher
    deliverer: Deliverer
    sweeper: Sweeper

    def start(self) -> None:
        self.ctx.moderator.warm()  # the classifier loads in ~2 s; not on the first request
        self.dispatcher.start()
        self.deliverer.start()
        self.sweeper.start()

    def close(self) -> None:
        self.sweeper.close()
        self.dispatcher.close()
        self.deliverer.close()
        self.ctx.sender.close()
        self.ctx.db.close()


def signing_key(settings: Settings, db: Database) -> bytes:
    """The key that signs file URLs: the setting when given, else one kept in the database,
    made once for the whole fleet (a key file left by an earlier version seeds it, so links
    handed out before keep working)."""
    if settings.url_signing_key:
        return settings.url_signing_key.encode()
    legacy = settings.data_dir / "url-signing.key"
    candidate = legacy.read_bytes() if legacy.is_file() else b""
    return SecretStore(db).get_or_create(
        URL_SIGNING_KEY, candidate if len(candidate) >= 32 else None
    )


def build_storage(settings: Settings, key: bytes) -> BlobStorage:
    if settings.storage_url:
        from vidmorph.storage.s3 import S3Storage

        return S3Storage(settings.storage_url, settings.s3_endpoint_url)
    return LocalStorage(settings.data_dir / "files", settings.public_url, key)


def private_data_dir(settings: Settings) -> None:
    """The data directory, mode 0700 (it holds the database, with the URL-signing key and the
    webhook secrets, and every tenant's media), and its SQLite file 0600 from the start."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    if data.stat().st_uid == os.getuid() and data.stat().st_mode & 0o077:
        data.chmod(0o700)
    prefix = "sqlite:///"
    name = settings.database_url.removeprefix(prefix).split("?")[0]
    if not settings.database_url.startswith(prefix) or name in ("", ":memory:"):
        return
    path = Path(name)
    try:
        # SQLite gives its -wal and -shm files the database's own mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o600)
    except OSError:
        return  # SQLite says what is wrong with the path when it opens it


def build_context(settings: Settings) -> AppContext:
    """Stores and adapters, with the schema migrated; starts no threads."""
    private_data_dir(settings)
    db = Database(settings.database_url, settings.db_pool_size)
    db.migrate()
    key = signing_key(settings, db)
    return AppContext(
        settings=settings,
        db=db,
        users=UserStore(db),
        accounts=AccountStore(db),
        assets=AssetStore(db),
        tasks=TaskStore(db),
        deliveries=DeliveryStore(db),
        storage=build_storage(settings, key),
        moderator=Moderator(use_classifier=settings.moderation_classifier),
        sender=CallbackSender(
            allow_private=settings.callback_allow_private,
            timeout_s=settings.callback_timeout_s,
            total_s=settings.callback_total_s,
        ),
        tmp_dir=process_scratch(settings.data_dir),
        leases=LeaseStore(db),
        workers=WorkerRegistry(db),
        metrics=MetricStore(db),
        uploads=UploadStore(db),
        upstream_jobs=UpstreamJobs(db),
        url_key=key,
    )


def build_dispatcher(ctx: AppContext) -> Dispatcher:
    if ctx.settings.uses_broker:
        from vidmorph.workers.celery_app import CeleryDispatcher

        return CeleryDispatcher(ctx.settings)
    return InProcessDispatcher(ctx, ctx.settings.workers)


def build_services(settings: Settings) -> Services:
    ctx = build_context(settings)
    dispatcher = build_dispatcher(ctx)
    ctx.dispatcher = dispatcher
    return Services(
        ctx=ctx,
        dispatcher=dispatcher,
        deliverer=Deliverer(ctx),
        sweeper=Sweeper(ctx, worker_id("api")),
    )
