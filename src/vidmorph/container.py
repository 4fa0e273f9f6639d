"""The composition root: the one place that chooses concrete classes from Settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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


def build_context(settings: Settings) -> AppContext:
    """Stores and adapters, with the schema migrated; starts no threads."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
