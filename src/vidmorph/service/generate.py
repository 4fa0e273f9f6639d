"""Create a video-to-video task: check asset and account, moderate, admit, dispatch."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Any

from vidmorph import errors
from vidmorph.callbacks.guard import validate_reply_url
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import (
    OUTPUT_FPS,
    Account,
    Asset,
    GenerationParams,
    Task,
    User,
    task_error,
)
from vidmorph.domain.states import TaskStatus
from vidmorph.moderation.moderator import ModerationFlag
from vidmorph.service import assets as asset_service
from vidmorph.service import fleet, notify
from vidmorph.service.context import AppContext
from vidmorph.service.framing import FRAME_SIZES, nearest_ratio
from vidmorph.store.admission import Admitted

log = logging.getLogger(__name__)

#: credits per output second: Gen-3 Alpha 10, Turbo 5, Aleph 15 (Runway's price), explore free
CREDITS_PER_S = {"gen3a": 10, "gen3a_turbo": 5, "gen4_aleph": 15, "aleph2": 15}
#: the task types Runway's own API makes (POST /v1/video_to_video's models)
RUNWAY_MODELS = ("gen4_aleph", "aleph2")
MAX_SEED = 4294967294
#: Runway's own API takes any 32-bit unsigned seed
RUNWAY_SEEDS = (0, 2**32 - 1)


@dataclass(frozen=True)
class CreateRequest:
    """A validated create body (ranges are checked at the HTTP edge)."""

    asset_id: str
    text_prompt: str
    structure_transformation: float = 3.0
    seconds: int | None = None
    seed: int | None = None
    explore_mode: bool = False
    reply_url: str | None = None
    reply_ref: str | None = None
    max_jobs: int | None = None
    #: a FRAME_SIZES key; None: the Runway ratio nearest the input's shape (Aleph keeps the
    #: input's framing)
    aspect_ratio: str | None = "landscape"
    resolution: str = "720p"
    #: gen4's optional reference image (an image asset of the user's); checked, then kept in
    #: the task's options (no engine conditions on it yet: README, "Gen-4")
    reference_asset_id: str | None = None
    #: the body's name for `asset_id`, for messages (gen4 calls it video_assetId)
    asset_field: str = "assetId"
    #: the account the task runs on; None: the asset's (Runway's surface names its default
    #: account, whichever of the user's accounts its upload came in on)
    account_email: str | None = None


def create(
    ctx: AppContext,
    user: User,
    req: CreateRequest,
    task_type: str,
    idempotency_key: str | None = None,
    *,
    throttle: bool = False,
) -> tuple[Task, Asset, Account | None]:
    """Admit a new task; returns it with its source asset (the response shows its URLs) and
    its account as the admission left it (None when the caller must read it again). With
    `throttle` (Runway's API) a task past the account's maxJobs waits THROTTLED, not a 429.

    Statements: one read of the asset with its account, then one write transaction of four
    (store.admission); an Idempotency-Key adds one read, a refusal a few more."""
    checked = _check(ctx, user, req, task_type, idempotency_key)
    if not isinstance(checked, _Checked):
        return checked
    if checked.flag is not None:
        return _moderated(ctx, checked, checked.flag), checked.asset, None
    admitted = ctx.tasks.admit(checked.task, **checked.admission(ctx, throttle))
    return _dispatched(ctx, admitted, checked.asset)


async def create_async(
    ctx: AppContext,
    user: User,
    req: CreateRequest,
    task_type: str,
    idempotency_key: str | None = None,
) -> tuple[Task, Asset, Account | None]:
    """`create` for a handler in the event loop, on SQLite: its reads are local-file reads
    (as a poll's), the admission's transaction is awaited (store.group_commit), and only what
    may wait on a lock or a network (a moderated task's write, a broker) goes to a thread.
    What follows the commit runs even if the handler is cancelled meanwhile. The first create
    for an engine runs its checks in a thread too: making the engine's estimator may import
    a model's libraries (seconds)."""
    if ctx.has_estimator(ctx.engine_name(task_type)):
        checked = _check(ctx, user, req, task_type, idempotency_key)
    else:
        checked = await asyncio.to_thread(_check, ctx, user, req, task_type, idempotency_key)
    if not isinstance(checked, _Checked):
        return checked
    if checked.flag is not None:
        failed = await asyncio.to_thread(_moderated, ctx, checked, checked.flag)
        return failed, checked.asset, None

    async def admit() -> tuple[Task, Asset, Account | None]:
        admitted = await ctx.tasks.admit_async(checked.task, **checked.admission(ctx, False))
        if ctx.dispatcher is None or ctx.dispatcher.submits_in_process:
            return _dispatched(ctx, admitted, checked.asset)
        return await asyncio.to_thread(_dispatched, ctx, admitted, checked.asset)

    job = asyncio.ensure_future(admit())
    _admitting.add(job)  # the loop holds tasks weakly
    job.add_done_callback(_admitting.discard)
    return await asyncio.shield(job)


#: admissions under way in create_async (shielded from their handler's cancellation)
_admitting: set[asyncio.Future[Any]] = set()


@dataclass(frozen=True)
class _Checked:
    """A create request checked and ready to admit (or to store as moderated)."""

    task: Task
    asset: Asset
    account: Account
    max_jobs: int
    idempotency: tuple[str, str] | None
    flag: ModerationFlag | None

    def admission(self, ctx: AppContext, throttle: bool) -> dict[str, Any]:
        """TaskAdmission.admit's keyword arguments."""
        return {
            "max_jobs": self.max_jobs,
            "max_queue_depth": ctx.settings.max_queue_depth,
            "idempotency": self.idempotency,
            "throttle": throttle,
            "max_user_tasks": ctx.settings.max_user_tasks,
        }


def _check(
    ctx: AppContext, user: User, req: CreateRequest, task_type: str, idempotency_key: str | None
) -> _Checked | tuple[Task, Asset, Account | None]:
    """Everything before the admission's write: the checks that refuse (raised), the task to
    admit with its prompt's verdict, or the answer to an Idempotency-Key repeat."""
    asset, account = asset_service.get_with_account(ctx, user, req.asset_id)
    if asset.media_type != "video" or asset.meta is None:
        raise errors.BadRequest(f"{req.asset_field} {req.asset_id} is not a video.")
    email = req.account_email or asset.email
    if email != asset.email:
        account = ctx.accounts.get(user.id, email)
    if account is None:
        raise errors.NotFound(f"Account {email} not found.")
    if account.suspended:
        raise errors.AccountSuspended()
    if req.explore_mode and account.plan != "unlimited":
        raise errors.BadRequest("exploreMode requires an account on the unlimited plan.")
    reference = None
    if req.reference_asset_id is not None:
        reference = asset_service.get(ctx, user, req.reference_asset_id)
        if reference.media_type != "image":
            raise errors.BadRequest(f"image_assetId {req.reference_asset_id} is not an image.")
    task = _new_task(ctx, user, req, task_type, asset, account)
    if reference is not None:
        task = replace(task, params=replace(task.params, reference_uuid=reference.uuid))
    _preflight(ctx, task, asset)
    idempotency = None
    if idempotency_key:
        idempotency = (idempotency_key, _request_hash(req, task_type))
        first = ctx.tasks.find_idempotent(user.id, *idempotency)
        if first is not None:
            return first, asset, None
    flag = ctx.moderator.check(req.text_prompt)
    max_jobs = req.max_jobs or account.max_jobs
    return _Checked(task, asset, account, max_jobs, idempotency, flag)


def _moderated(ctx: AppContext, checked: _Checked, flag: ModerationFlag) -> Task:
    return _fail_moderated(ctx, checked.task, flag.category, flag.message, checked.idempotency)


def _dispatched(
    ctx: AppContext, admitted: Admitted, asset: Asset
) -> tuple[Task, Asset, Account | None]:
    if admitted.created and admitted.task.status is TaskStatus.PENDING:
        ctx.dispatch(admitted.task)
    return admitted.task, asset, admitted.account


def _new_task(
    ctx: AppContext, user: User, req: CreateRequest, task_type: str, asset: Asset, account: Account
) -> Task:
    assert asset.meta is not None
    duration_s = asset.meta.duration_s
    max_s = ctx.settings.max_seconds
    if req.seconds is not None and req.seconds > max_s:
        raise errors.BadRequest(f"seconds must be between 1 and {max_s}.")
    seconds = req.seconds or max(1, min(max_s, round(duration_s) if duration_s else max_s))
    out_s = min(float(seconds), duration_s) if duration_s else float(seconds)
    width, height = FRAME_SIZES[req.aspect_ratio or nearest_ratio(asset)]
    reply_url = req.reply_url or account.reply_url
    if reply_url:
        validate_reply_url(reply_url, allow_private=ctx.settings.callback_allow_private)
    params = GenerationParams(
        asset_uuid=asset.uuid,
        text_prompt=req.text_prompt,
        structure_transformation=req.structure_transformation,
        seconds=seconds,
        seed=req.seed if req.seed is not None else 1 + secrets.randbelow(MAX_SEED),
        explore_mode=req.explore_mode,
        width=width,
        height=height,
        resolution=req.resolution,
    )
    now = utcnow()
    credits = 0 if req.explore_mode else math.ceil(CREDITS_PER_S[task_type] * out_s)
    return Task(
        uuid=ids.new_uuid(),
        user_id=user.id,
        email=account.email,
        task_type=task_type,
        status=TaskStatus.PENDING,
        params=params,
        reply_url=reply_url,
        reply_ref=req.reply_ref,
        credits=credits,
        progress_ratio=None,
        progress_text=None,
        error=None,
        attempts=0,
        lease_owner=None,
        lease_expires_at=None,
        created_at=now,
        updated_at=now,
    )


def _preflight(ctx: AppContext, task: Task, asset: Asset) -> None:
    """Refuse (RequestTooLarge, 400) a job the engine says cannot fit, before it is queued."""
    name = ctx.engine_name(task.task_type)
    engine = ctx.estimator(name)
    # What isinstance(engine, Estimating) tests, without a runtime Protocol check's cost.
    check_fits = getattr(engine, "check_fits", None)
    if check_fits is None:
        return
    p = task.params
    duration_s = asset.meta.duration_s if asset.meta and asset.meta.duration_s else p.seconds
    num_frames = max(1, round(min(float(p.seconds), duration_s) * OUTPUT_FPS))
    budget = None
    if ctx.dispatcher is not None and not ctx.dispatcher.runs_tasks:
        # The engine runs on other machines: the most memory any of its live workers has.
        budget = fleet.memory_budget_bytes(ctx, name)
    check_fits(num_frames, p.height, p.width, p.structure_transformation / 10, budget_bytes=budget)


def _fail_moderated(
    ctx: AppContext,
    task: Task,
    category: str,
    message: str,
    idempotency: tuple[str, str] | None,
) -> Task:
    error = task_error(message, "SAFETY.INPUT.TEXT", category)
    failed = Task(
        **{
            **task.__dict__,
            "status": TaskStatus.FAILED,
            "error": error,
            "credits": 0,
            "finished_at": task.created_at,
        }
    )
    since = utcnow() - timedelta(seconds=ctx.settings.moderation_window_s)
    suspended = ctx.tasks.add_moderated(
        failed,
        category,
        suspend_after=ctx.settings.moderation_suspend_after,
        since=since,
        idempotency=idempotency,
    )
    log.warning(
        "task %s moderated (%s)%s",
        failed.uuid,
        category,
        "; account suspended" if suspended else "",
    )
    notify.task_changed(ctx, failed)
    return failed


def _request_hash(req: CreateRequest, task_type: str) -> str:
    text = json.dumps({"taskType": task_type, **asdict(req)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
