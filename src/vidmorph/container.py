"""The composition root: the one place that chooses concrete classes from Settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from vidmorph.callbacks.sender import CallbackSender
from vidmorph.config import Settings
from vidmorph.moderation.moderator import Moderator
from vidmorph.service.context import AppContext
from vidmorph.service.notify import Deliverer
from vidmorph.storage.local import LocalStorage
from vidmorph.store.accounts import AccountStore
from vidmorph.store.assets import AssetStore
from vidmorph.store.db import Database
from vidmorph.store.deliveries import DeliveryStore
from vidmorph.store.tasks import TaskStore
from vidmorph.store.users import UserStore
from vidmorph.workers.inprocess import InProcessDispatcher


@dataclass
class Services:
    ctx: AppContext
    dispatcher: InProcessDispatcher
    deliverer: Deliverer

    def start(self) -> None:
        self.ctx.moderator.warm()  # the classifier loads in ~2 s; not on the first request
        self.dispatcher.start()
        self.deliverer.start()

    def close(self) -> None:
        self.dispatcher.close()
        self.deliverer.close()
        self.ctx.sender.close()
        self.ctx.db.close()


def signing_key(data_dir: Path) -> bytes:
    """The key that signs file URLs, made once per data directory and kept there."""
    path = data_dir / "url-signing.key"
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def build_context(settings: Settings) -> AppContext:
    """Stores and adapters, with the schema migrated; starts no threads."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "tmp").mkdir(exist_ok=True)
    db = Database(settings.database_url)
    db.migrate()
    return AppContext(
        settings=settings,
        db=db,
        users=UserStore(db),
        accounts=AccountStore(db),
        assets=AssetStore(db),
        tasks=TaskStore(db),
        deliveries=DeliveryStore(db),
        storage=LocalStorage(
            settings.data_dir / "files", settings.public_url, signing_key(settings.data_dir)
        ),
        moderator=Moderator(use_classifier=settings.moderation_classifier),
        sender=CallbackSender(
            allow_private=settings.callback_allow_private, timeout_s=settings.callback_timeout_s
        ),
    )


def build_services(settings: Settings) -> Services:
    ctx = build_context(settings)
    dispatcher = InProcessDispatcher(ctx, settings.workers)
    ctx.dispatcher = dispatcher
    return Services(ctx=ctx, dispatcher=dispatcher, deliverer=Deliverer(ctx))
