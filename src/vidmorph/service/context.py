"""AppContext: the stores and adapters every use case works with, built by the container."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from vidmorph.callbacks.sender import CallbackSender
from vidmorph.config import Settings
from vidmorph.engines import registry
from vidmorph.engines.base import Engine
from vidmorph.moderation.moderator import Moderator
from vidmorph.scheduler.dispatch import Dispatcher
from vidmorph.storage.local import LocalStorage
from vidmorph.store.accounts import AccountStore
from vidmorph.store.assets import AssetStore
from vidmorph.store.db import Database
from vidmorph.store.deliveries import DeliveryStore
from vidmorph.store.tasks import TaskStore
from vidmorph.store.users import UserStore


@dataclass
class AppContext:
    settings: Settings
    db: Database
    users: UserStore
    accounts: AccountStore
    assets: AssetStore
    tasks: TaskStore
    deliveries: DeliveryStore
    storage: LocalStorage
    moderator: Moderator
    sender: CallbackSender
    #: set by the container once the dispatcher that calls back into run_task exists
    dispatcher: Dispatcher | None = None
    _engine: Engine | None = field(default=None, repr=False)
    _estimator: Engine | None = field(default=None, repr=False)
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def engine(self) -> Engine:
        """The configured engine, created and loaded once per process, on first use."""
        with self._engine_lock:
            if self._engine is None:
                engine = registry.create(self.settings.engine, self.settings)
                engine.load(self.settings.engine_device)
                self._engine = engine
            return self._engine

    def estimator(self) -> Engine:
        """The configured engine for pre-flight estimates: loaded if this process runs tasks,
        otherwise created without weights (an API-only node never loads a model)."""
        with self._engine_lock:
            if self._engine is not None:
                return self._engine
            if self._estimator is None:
                self._estimator = registry.create(self.settings.engine, self.settings)
            return self._estimator

    def dispatch(self, task_uuid: str, priority: int = 0) -> None:
        if self.dispatcher is not None:
            self.dispatcher.submit(task_uuid, priority)
