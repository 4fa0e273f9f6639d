"""AppContext: the stores and adapters every use case works with, built by the container."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from vidmorph.callbacks.sender import CallbackSender
from vidmorph.config import Settings
from vidmorph.domain.models import Task
from vidmorph.engines import registry
from vidmorph.engines.base import Engine
from vidmorph.moderation.moderator import Moderator
from vidmorph.scheduler.dispatch import Dispatcher
from vidmorph.service.view_cache import ViewCache
from vidmorph.storage.base import BlobStorage
from vidmorph.store.accounts import AccountStore
from vidmorph.store.assets import AssetStore
from vidmorph.store.db import Database
from vidmorph.store.deliveries import DeliveryStore
from vidmorph.store.leases import LeaseStore
from vidmorph.store.metrics import MetricStore
from vidmorph.store.tasks import TaskStore
from vidmorph.store.uploads import UploadStore, UpstreamJobs
from vidmorph.store.users import UserStore
from vidmorph.store.workers import WorkerRegistry
from vidmorph.upstream.base import Upstream

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    settings: Settings
    db: Database
    users: UserStore
    accounts: AccountStore
    assets: AssetStore
    tasks: TaskStore
    deliveries: DeliveryStore
    storage: BlobStorage
    moderator: Moderator
    sender: CallbackSender
    #: this process's own scratch folder (uploads, renders, fetched inputs)
    tmp_dir: Path
    leases: LeaseStore
    workers: WorkerRegistry
    metrics: MetricStore
    uploads: UploadStore
    upstream_jobs: UpstreamJobs
    #: signs links and upload targets this server checks itself (the fleet shares it)
    url_key: bytes
    #: set by the container once the dispatcher that calls back into run_task exists
    dispatcher: Dispatcher | None = None
    #: signed URLs by storage key, reused for a minute (service.views)
    signed_urls: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)
    #: encoded task views by (user, task), reused while their row is unchanged (GET polls)
    views: ViewCache = field(default_factory=ViewCache, repr=False)
    _engines: dict[str, Engine | Upstream] = field(default_factory=dict, repr=False)
    _estimators: dict[str, Engine | Upstream] = field(default_factory=dict, repr=False)
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def engine_name(self, task_type: str) -> str:
        return self.settings.engine_for(task_type)

    def engine(self, name: str | None = None) -> Engine | Upstream:
        """Engine `name` (default VIDMORPH_ENGINE), created and loaded once per process."""
        name = name or self.settings.engine
        with self._engine_lock:
            if name not in self._engines:
                engine = self._make(name)
                engine.load(self.settings.engine_device)
                self._engines[name] = engine
            return self._engines[name]

    def estimator(self, name: str | None = None) -> Engine | Upstream:
        """Engine `name` for pre-flight estimates: the loaded one if this process runs tasks,
        otherwise one created without weights (an API-only node never loads a model)."""
        name = name or self.settings.engine
        # First without the lock, which `engine()` holds across a model's load (minutes for a
        # diffusion model): an admission in the event loop must not wait on that.
        made = self._engines.get(name) or self._estimators.get(name)
        if made is not None:
            return made
        with self._engine_lock:
            if name in self._engines:
                return self._engines[name]
            if name not in self._estimators:
                self._estimators[name] = self._make(name)
            return self._estimators[name]

    def has_estimator(self, name: str) -> bool:
        """Whether `estimator(name)` answers at once (made already: nothing to import or
        construct, no lock to wait on)."""
        return name in self._engines or name in self._estimators

    def _make(self, name: str) -> Engine | Upstream:
        """A new engine: `runway` hands tasks to a Runway-API server; the rest are frame
        engines (engines.registry)."""
        if name == "runway":
            from vidmorph.upstream.runway import RunwayUpstream

            return RunwayUpstream(self.settings)
        return registry.create(name, self.settings)

    def dispatch(self, task: Task) -> None:
        """Hand an admitted task to whatever runs tasks. A broker that cannot be reached is
        no loss: the task is committed, and the sweeper sends it again."""
        if self.dispatcher is None:
            return
        try:
            self.dispatcher.submit(
                task.uuid, task.params.priority, self.engine_name(task.task_type)
            )
        except Exception as exc:
            log.warning("task %s admitted but not sent (%s); the sweeper sends it", task.uuid, exc)
