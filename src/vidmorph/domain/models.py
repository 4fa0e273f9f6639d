"""Frozen records the service passes around: users, accounts, assets, tasks, deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vidmorph.domain import ids
from vidmorph.domain.states import TaskStatus

#: the contract's output frame rate (README, "Contract decisions")
OUTPUT_FPS = 24.0


@dataclass(frozen=True)
class User:
    id: int
    #: Standard Webhooks secret (`whsec_...`) that signs this user's callbacks
    webhook_secret: str


@dataclass(frozen=True)
class Account:
    """A capacity pool: a maxJobs slot count, a plan and a credit allowance (the README's
    "Contract decisions")."""

    user_id: int
    email: str
    max_jobs: int
    plan: str
    num_plan_credits: int
    #: credits spent or reserved by tasks that have not failed or been cancelled
    credits_used: int
    reply_url: str | None
    suspended: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MediaMeta:
    duration_s: float
    fps: float
    width: int
    height: int
    has_audio: bool
    has_alpha: bool


@dataclass(frozen=True)
class Asset:
    uuid: str
    user_id: int
    email: str
    name: str
    media_type: str
    content_type: str
    ext: str
    blob_key: str
    preview_key: str | None
    size_bytes: int
    meta: MediaMeta | None
    is_user_upload: bool
    task_uuid: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def asset_id(self) -> str:
        return ids.format_id(self.user_id, self.email, "asset", self.uuid)


def task_error(message: str, reason: str, moderation_category: str | None = None) -> dict[str, Any]:
    """A FAILED task's `error` object in the contract's shape (useapi §6)."""
    return {
        "errorMessage": message,
        "reason": reason,
        "message": message,
        "moderation_category": moderation_category,
        # compat(useapi §6): Runway sets this on moderated tasks.
        "tally_asimov": moderation_category is not None,
    }


@dataclass(frozen=True)
class GenerationParams:
    """What a create call asked for, after validation and defaults."""

    asset_uuid: str
    text_prompt: str
    #: 0..10 as the contract takes it; the engine gets value / 10
    structure_transformation: float
    seconds: int
    seed: int
    explore_mode: bool
    width: int
    height: int
    resolution: str = "720p"
    #: gen4's reference image (an asset uuid), when one was given
    reference_uuid: str | None = None

    @property
    def priority(self) -> int:
        """Queue order: 0 runs first; explore-mode tasks get 1 and run after the others."""
        return 1 if self.explore_mode else 0


@dataclass(frozen=True)
class Task:
    uuid: str
    user_id: int
    email: str
    task_type: str
    status: TaskStatus
    params: GenerationParams
    reply_url: str | None
    reply_ref: str | None
    credits: int
    progress_ratio: float | None
    progress_text: str | None
    error: dict[str, Any] | None
    attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifacts: tuple[Asset, ...] = field(default=())

    @property
    def task_id(self) -> str:
        return ids.format_id(self.user_id, self.email, "task", self.uuid)


@dataclass(frozen=True)
class Delivery:
    """One callback to send: a task snapshot for a replyUrl, retried when terminal."""

    id: int
    task_uuid: str
    user_id: int
    url: str
    body: bytes
    terminal: bool
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime
