"""The contract's JSON shapes for tasks, assets, accounts and features (useapi §2, §3, §6, §10).

Callbacks send exactly what `GET /tasks/{taskId}` returns, so both call `task_view`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

from vidmorph.domain.clock import iso
from vidmorph.domain.ids import format_id
from vidmorph.domain.models import Account, Asset, Task
from vidmorph.domain.states import TaskStatus
from vidmorph.scheduler import eta
from vidmorph.service import fleet
from vidmorph.service.context import AppContext

_TYPE_NAMES = {
    "gen3a": "Gen-3 Alpha",
    "gen3a_turbo": "Gen-3 Alpha Turbo",
    "gen4_aleph": "Gen-4 Aleph",
    "aleph2": "Aleph 2",
}
#: a first guess of wall seconds per output second, used until real runs are measured
_DEFAULT_SPEED = 1.0


def task_name(task_type: str, seed: int, prompt: str) -> str:
    # compat(useapi §6): names read "Gen-3 Alpha <seed>, <prompt…>".
    return f"{_TYPE_NAMES.get(task_type, task_type)} {seed}, {prompt[:80]}"


def task_view(
    ctx: AppContext,
    task: Task,
    source: Asset | None = None,
    account: Account | None = None,
    *,
    looked_up: bool = False,
) -> dict[str, Any]:
    """The task object. `source` and `account`, when the caller has them, save two reads;
    with `looked_up`, a None among them means the caller found none (a deleted source)."""
    p = task.params
    name = task_name(task.task_type, p.seed, p.text_prompt)
    if not looked_up and (source is None or source.uuid != p.asset_uuid):
        source = ctx.assets.get(task.user_id, p.asset_uuid)
    ratio = task.progress_ratio
    body: dict[str, Any] = {
        "taskId": task.task_id,
        "id": task.uuid,
        "name": name,
        "image": None,
        "createdAt": iso(task.created_at),
        "updatedAt": iso(task.updated_at),
        "taskType": task.task_type,
        "options": {
            "name": name,
            "video_prompt": signed_url(ctx, source.blob_key) if source else None,
            "video_prompt_preview_image": signed_url(ctx, source.preview_key) if source else None,
            "text_prompt": p.text_prompt,
            # compat(useapi §4): the request takes 0..10, options show it as 0..1.
            "structure_transformation": round(p.structure_transformation / 10, 4),
            "seed": p.seed,
            "seconds": p.seconds,
            "width": p.width,
            "height": p.height,
            "resolution": p.resolution,
            "exploreMode": p.explore_mode,
            "watermark": False,
            "image_as_end_frame": False,
            "enhance_prompt": False,
            "assetGroupName": "Generative Video",
            "recordingEnabled": True,
        },
        "status": task.status.value,
        "error": task.error,
        "progressText": task.progress_text,
        # compat(useapi §6): progressRatio is a string ("0.42"), clients parseFloat it.
        "progressRatio": None if ratio is None else _ratio_text(ratio),
        "estimatedTimeToStartSeconds": None,
        "placeInLine": None,
        "artifacts": [artifact_view(ctx, a, task) for a in task.artifacts],
        "sharedAsset": None,
        "features": features_of(ctx, task.user_id, task.email, account, looked_up=looked_up),
        "replyUrl": task.reply_url,
        "replyRef": task.reply_ref,
        "code": 200,
    }
    if p.reference_uuid is not None:  # gen4's reference image, by id (no read on the poll)
        body["options"]["image_assetId"] = format_id(
            task.user_id, task.email, "asset", p.reference_uuid
        )
    if task.status is TaskStatus.PENDING:
        line = ctx.tasks.line()  # as of at most a second ago: no count per poll
        place = line.place(p.priority, task.created_at, task.uuid)
        body["placeInLine"] = place
        body["estimatedTimeToStartSeconds"] = estimated_start_s(
            ctx, place, line.running, ctx.engine_name(task.task_type)
        )
    return body


def task_views(ctx: AppContext, tasks: list[Task]) -> list[dict[str, Any]]:
    """Views of many tasks with their sources and accounts read once, not once per task."""
    if not tasks:
        return []
    user_id = tasks[0].user_id
    sources = ctx.assets.by_uuids(user_id, sorted({t.params.asset_uuid for t in tasks}))
    accounts = {a.email: a for a in ctx.accounts.all_of(user_id)}
    return [
        task_view(ctx, t, sources.get(t.params.asset_uuid), accounts.get(t.email), looked_up=True)
        for t in tasks
    ]


def estimated_start_s(
    ctx: AppContext, place_in_line: int, running: int, engine: str | None = None
) -> int:
    """Seconds until the task in `place_in_line` starts behind `running` tasks, from the
    measured speed of recent runs and the slots the live workers of its engine offer (in this
    process or elsewhere); both figures are cached for seconds."""
    speed = _cached(
        f"speed:{id(ctx)}",
        5.0,
        lambda: eta.seconds_per_output_second(ctx.tasks.recent_runs(), _DEFAULT_SPEED),
    )
    task_s = speed * ctx.settings.max_seconds
    slots = max(fleet.slots(ctx, engine or ctx.settings.engine), 1)
    return eta.estimated_start_s(place_in_line, running, slots, task_s)


def _ratio_text(ratio: float) -> str:
    text = f"{ratio:.2f}".rstrip("0").rstrip(".")
    return text or "0"


#: a signed URL is reused this long (its lifetime is then at least url_ttl_s minus this)
_URL_REUSE_S = 60.0


def signed_url(ctx: AppContext, key: str | None) -> str | None:
    """The signed URL of `key`. Signing (an HMAC, or an S3 presign) is redone at most once a
    minute per key, not on every poll of a task that shows it."""
    if key is None:
        return None
    now = time.monotonic()
    hit = ctx.signed_urls.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    url = ctx.storage.url(key, ctx.settings.url_ttl_s)
    if len(ctx.signed_urls) > 10_000:
        ctx.signed_urls.clear()
    ctx.signed_urls[key] = (now + min(_URL_REUSE_S, ctx.settings.url_ttl_s / 10), url)
    return url


def _metadata(asset: Asset) -> dict[str, Any] | None:
    m = asset.meta
    if m is None:
        return None
    if asset.media_type == "audio":  # no pictures: no frame rate, size or alpha to speak of
        return {"duration": round(m.duration_s, 3), "hasAudio": True}
    # compat(useapi §3): both the 2024 form (dimensions, size) and the 2025 form (width, ...).
    return {
        "frameRate": m.fps,
        "duration": round(m.duration_s, 3),
        "dimensions": [m.width, m.height],
        "size": {"width": m.width, "height": m.height},
        "width": m.width,
        "height": m.height,
        "hasAlphaChannel": m.has_alpha,
        "hasAudio": m.has_audio,
    }


def artifact_view(ctx: AppContext, asset: Asset, task: Task) -> dict[str, Any]:
    preview = signed_url(ctx, asset.preview_key)
    return {
        "assetId": asset.asset_id,
        "id": asset.uuid,
        "createdAt": iso(asset.created_at),
        "updatedAt": iso(asset.updated_at),
        "userId": asset.user_id,
        "createdBy": asset.user_id,
        "taskId": task.task_id,
        "parentAssetGroupId": task.uuid,
        "filename": f"{asset.name}.{asset.ext}",
        "url": signed_url(ctx, asset.blob_key),
        # compat(useapi §6): fileSize is a string inside artifacts, a number in asset lists.
        "fileSize": str(asset.size_bytes),
        "fileExtStandardized": asset.ext,
        "isDirectory": False,
        "previewUrls": [preview] if preview else [],
        "private": True,
        "privateInTeam": True,
        "deleted": False,
        "reported": False,
        "metadata": _metadata(asset),
        "favorite": False,
    }


def listed_asset_view(ctx: AppContext, asset: Asset) -> dict[str, Any]:
    """An asset as `GET /assets/` lists it: `createdBy` is the user's number there (useapi
    §3), the user object in the upload's and the single asset's answer."""
    return asset_view(ctx, asset) | {"createdBy": asset.user_id}


def asset_view(ctx: AppContext, asset: Asset) -> dict[str, Any]:
    preview = signed_url(ctx, asset.preview_key)
    user = {
        "id": asset.user_id,
        "username": f"user{asset.user_id}",
        "firstName": "",
        "lastName": "",
        "picture": None,
        "teamName": "",
        "teamPicture": None,
    }
    return {
        "assetId": asset.asset_id,
        "id": asset.uuid,
        "user": user,
        "createdAt": iso(asset.created_at),
        "updatedAt": iso(asset.updated_at),
        "name": asset.name,
        "description": "",
        "type": {"name": asset.media_type, "type": asset.media_type, "isDirectory": False},
        "size": asset.size_bytes,
        "url": signed_url(ctx, asset.blob_key),
        "previewUrls": [preview] if preview else [],
        "fileCount": 1,
        "private": True,
        "privateInTeam": True,
        "permissions": {"read": True, "write": True, "admin": True},
        "annotated": False,
        "isUserUpload": asset.is_user_upload,
        "sourceApplication": "web" if asset.is_user_upload else "vidmorph",
        "createdBy": user,
        "favorite": False,
        "mediaType": asset.media_type,
        "mediaSubtype": None,
        "fileSize": asset.size_bytes,
        "fileExtStandardized": asset.ext,
        "metadata": _metadata(asset),
        "username": user["username"],
        "userPicture": None,
        "userId": asset.user_id,
        "parentAssetGroupId": asset.task_uuid,
        # a task's output: the task that made it (of the same account), as in its artifacts
        "taskId": None
        if asset.task_uuid is None
        else format_id(asset.user_id, asset.email, "task", asset.task_uuid),
    }


def account_view(account: Account) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": account.email,
        "maxJobs": account.max_jobs,
        "plan": account.plan,
        "numPlanCredits": account.num_plan_credits,
        "numPlanCreditsUsed": account.credits_used,
        "replyUrl": account.reply_url,
        "createdAt": iso(account.created_at),
        "updatedAt": iso(account.updated_at),
    }
    if account.suspended:
        # compat(useapi §2): clients refuse to use an account whose `error` is set.
        body["error"] = "This account has been suspended."
    return body


def features_of(
    ctx: AppContext,
    user_id: int,
    email: str,
    account: Account | None = None,
    *,
    looked_up: bool = False,
) -> dict[str, Any]:
    if not looked_up and (account is None or account.email != email):
        account = ctx.accounts.get(user_id, email)
    permitted = account.num_plan_credits if account else 0
    used = account.credits_used if account else 0
    return {
        "storageGB": _storage_gb(ctx),
        "numPlanCredits_permitted": permitted,
        "numPlanCredits_used": used,
    }


def features_view(ctx: AppContext, account: Account) -> dict[str, Any]:
    return {
        "permitted": {"storageGB": _storage_gb(ctx), "numPlanCredits": account.num_plan_credits},
        "used": {"numPlanCredits": account.credits_used},
        "plan": account.plan,
        "exploreMode": account.plan == "unlimited",
        "maxJobs": account.max_jobs,
        "engine": ctx.settings.engine,
        "maxSeconds": ctx.settings.max_seconds,
        "email": account.email,
    }


def _storage_gb(ctx: AppContext) -> int:
    return int(
        _cached(
            f"storage:{id(ctx)}", 60.0, lambda: shutil.disk_usage(ctx.settings.data_dir).total / 1e9
        )
    )


_CACHE: dict[str, tuple[float, float]] = {}


def _cached(key: str, ttl_s: float, compute: Callable[[], float]) -> float:
    """Slow-moving figures (disk size, measured speed) recomputed at most every `ttl_s`."""
    now = time.monotonic()
    hit = _CACHE.get(key)
    if hit is None or hit[0] < now:
        hit = (now + ttl_s, compute())
        _CACHE[key] = hit
    return hit[1]
