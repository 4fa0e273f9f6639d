"""Runway's own developer API over the same tasks: create, the task, organization and usage
views.

A Runway API key is a Vidmorph token; its user's default account is the organization. Tasks are
made by the same admission as useapi's (credits, moderation, maxJobs, the queue), with one
difference Runway has: past the account's maxJobs a task waits THROTTLED instead of being
refused, and `release_throttled` moves it on when a slot frees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.clock import iso
from vidmorph.domain.models import Account, Asset, Task, User
from vidmorph.domain.states import TaskStatus
from vidmorph.service import accounts, generate, notify, polls, sources
from vidmorph.service.context import AppContext
from vidmorph.service.framing import FRAME_SIZES
from vidmorph.service.generate import CreateRequest
from vidmorph.service.views import signed_url

log = logging.getLogger(__name__)

#: a generous stand-in for Runway's per-model daily cap, which Vidmorph does not impose
DAILY_GENERATIONS = 100_000


@dataclass(frozen=True)
class RunwayRequest:
    """A validated `POST /v1/video_to_video` (ranges are checked at the HTTP edge)."""

    model: str
    video_uri: str
    prompt_text: str | None
    seed: int | None
    reference_uri: str | None = None
    keyframes: int = 0
    target_aspect_ratio: str | None = None
    output_format: str = "mp4"


def create(ctx: AppContext, user: User, req: RunwayRequest) -> Task:
    """Admit a task from Runway's body; THROTTLED when the account's slots are all taken."""
    if req.keyframes:
        raise errors.BadRequest(
            f"keyframes: the {ctx.engine_name(req.model)} engine cannot follow keyframes."
        )
    if req.output_format != "mp4":
        raise errors.BadRequest("outputFormat: this server makes mp4 (H.264) only.")
    aspect = req.target_aspect_ratio
    if aspect is not None and aspect not in FRAME_SIZES:  # the schema admits only
        raise errors.BadRequest(f"targetAspectRatio {aspect}: not a size this server makes.")
    account = accounts.default_account(ctx, user)
    if account.suspended:  # before any media is fetched for it
        raise errors.AccountSuspended()
    video = sources.asset_for_uri(ctx, user, account.email, req.video_uri, "videoUri")
    # A video this request brought in (not a runway:// upload) is removed again when the
    # request is refused, so a refusal stores nothing.
    made = [] if req.video_uri.startswith("runway://") else [video]
    try:
        if req.reference_uri is not None:
            # Checked as an image, like Runway does; the engines take no reference (README),
            # so one this request brought in is not kept.
            reference = sources.asset_for_uri(
                ctx, user, account.email, req.reference_uri, "references", "image"
            )
            if not req.reference_uri.startswith("runway://"):
                sources.discard(ctx, reference)
        create_req = CreateRequest(
            asset_id=video.asset_id,
            # aleph2 may run without a prompt: the input restyled by the seed alone
            text_prompt=req.prompt_text or "the same scene",
            seed=req.seed,
            # Aleph edits a video in its own framing: without a targetAspectRatio (gen4_aleph
            # has none), the one of Runway's ratios nearest the input's (service.framing)
            aspect_ratio=aspect,
            account_email=account.email,
        )
        task, _, _ = generate.create(ctx, user, create_req, req.model, throttle=True)
    except errors.VidmorphError:
        for asset in made:
            sources.discard(ctx, asset)
        raise
    return task


def release_throttled(ctx: AppContext, user_id: int, email: str) -> int:
    """Move the account's THROTTLED tasks into its free slots and send them to the workers."""
    moved = ctx.tasks.promote_throttled(user_id, email)
    for uuid in moved:
        task = ctx.tasks.get(uuid)
        if task is not None:
            log.info("task %s has a slot now: PENDING", uuid)
            ctx.dispatch(task)
            notify.task_changed(ctx, task)
    return len(moved)


def sweep_throttled(ctx: AppContext) -> int:
    """`release_throttled` for every account with a THROTTLED task (the sweeper's phase)."""
    return sum(
        release_throttled(ctx, user, email) for user, email in ctx.tasks.throttled_accounts()
    )


async def task_json(ctx: AppContext, user: User, task_id: str) -> bytes:
    """GET /v1/tasks/{id}, encoded: read and reused as useapi's poll is (service.polls)."""
    body = await polls.answer_async(ctx, user, _task_uuid(user, task_id), _poll_view)
    if body is None:
        raise errors.NotFound("Task not found.")
    return body


def _task_uuid(user: User, task_id: str) -> str:
    """Runway's id is the uuid; a useapi taskId is taken too."""
    parsed = ids.parse_own_id(task_id, "task", user.id)
    return parsed.uuid if parsed else task_id


def _poll_view(
    ctx: AppContext, task: Task, _source: Asset | None, _account: Account | None
) -> dict[str, Any]:
    return task_view(ctx, task)


def task_view(ctx: AppContext, task: Task) -> dict[str, Any]:
    """The task as Runway's `GET /v1/tasks/{id}` shows it."""
    status = task.status
    body: dict[str, Any] = {
        "id": task.uuid,
        "status": status.value,
        "createdAt": iso(task.created_at),
    }
    if status in (TaskStatus.PENDING, TaskStatus.THROTTLED, TaskStatus.RUNNING):
        body["estimatedCost"] = {"credits": task.credits}
    else:
        body["cost"] = {"credits": task.credits if status is TaskStatus.SUCCEEDED else 0}
    if status is TaskStatus.RUNNING:
        body["progress"] = float(task.progress_ratio or 0.0)
    elif status is TaskStatus.SUCCEEDED:
        body["output"] = [url for a in task.artifacts if (url := signed_url(ctx, a.blob_key))]
    elif status is TaskStatus.FAILED:
        body["failure"], body["failureCode"] = _failure(task.error)
    return body


def _failure(error: Any) -> tuple[str, str | None]:
    """Runway's `failure` text and `failureCode` from a task's error (text or the moderation
    object, whose reason is already Runway's code: SAFETY.INPUT.TEXT)."""
    if isinstance(error, dict):
        return str(error.get("message") or error.get("errorMessage")), error.get("reason")
    return str(error or "The task failed."), "INTERNAL"


def organization_view(ctx: AppContext, user: User) -> dict[str, Any]:
    """`GET /v1/organization`: the default account's credits, limits and today's use."""
    account = accounts.default_account(ctx, user)
    today = ctx.tasks.usage.created_today(user.id, account.email)
    models = {
        model: {
            "maxConcurrentGenerations": account.max_jobs,
            "maxDailyGenerations": DAILY_GENERATIONS,
        }
        for model in generate.RUNWAY_MODELS
    }
    return {
        "creditBalance": max(0, account.num_plan_credits - account.credits_used),
        "tier": {"maxMonthlyCreditSpend": account.num_plan_credits, "models": models},
        "usage": {"models": {m: {"dailyGenerations": today.get(m, 0)} for m in models}},
    }


def usage_view(ctx: AppContext, user: User, start: date, before: date) -> dict[str, Any]:
    """`POST /v1/organization/usage`: credits the default account spent per UTC day and model
    in [start, before), net of what FAILED and CANCELLED tasks gave back; days with no use are
    left out. A deleted task's credits stay counted (store.usage)."""
    account = accounts.default_account(ctx, user)
    usage = ctx.tasks.usage
    rows = usage.credits_by_day(user.id, account.email, _midnight(start), _midnight(before))
    days: dict[date, list[dict[str, Any]]] = {}
    for day, model, credits in rows:
        days.setdefault(day, []).append({"amount": credits, "model": model})
    return {
        "models": sorted({model for _, model, _ in rows}),
        "results": [{"date": d.isoformat(), "usedCredits": used} for d, used in days.items()],
    }


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)
