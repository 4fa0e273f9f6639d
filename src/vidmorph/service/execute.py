"""run_task: claim a task, decode its input, run the engine, encode, store, finish, call back.

The in-process pool and Celery both end here. A claim is a conditional UPDATE, so a duplicate
delivery of the same id does nothing; a heartbeat keeps the lease while the engine works.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import OUTPUT_FPS, Asset, MediaMeta, Task, task_error
from vidmorph.domain.states import TaskStatus
from vidmorph.engines.base import Engine, GenerationInput
from vidmorph.media.clip import Clip
from vidmorph.media.decode import read_clip
from vidmorph.media.encode import write_jpeg, write_mp4
from vidmorph.service import notify
from vidmorph.service.assets import delete_files
from vidmorph.service.context import AppContext
from vidmorph.service.views import task_name

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERNAL_REASON = "INTERNAL.BAD_OUTPUT.CODE01"
#: share of progressRatio each phase covers: decode, engine, encode
_PHASES = {"decode": (0.0, 0.1), "engine": (0.1, 0.9), "encode": (0.9, 0.99)}


class TaskHooks:
    """RunHooks for one task: progress to the row (and throttled callbacks), cancel checks."""

    def __init__(self, ctx: AppContext, task: Task, owner: str, engine_name: str) -> None:
        self.ctx, self.task, self.owner, self.engine_name = ctx, task, owner, engine_name
        self.phase = "decode"
        self._phase_started = time.monotonic()
        self._last_write = 0.0
        self._last_ratio = -1.0

    def progress(self, ratio: float) -> None:
        low, high = _PHASES[self.phase]
        overall = round(low + (high - low) * min(max(ratio, 0.0), 1.0), 4)
        now = time.monotonic()
        if overall - self._last_ratio < 0.01 and now - self._last_write < 1.0:
            return
        self._last_write, self._last_ratio = now, overall
        text = f"{self.phase.capitalize()} {round(ratio * 100)}%"
        if not self.ctx.tasks.set_progress(self.task.uuid, self.owner, overall, text):
            raise errors.TaskCancelled()
        notify.task_progressed(self.ctx, self.task)

    def check_cancelled(self) -> None:
        if not self.ctx.tasks.is_running_for(self.task.uuid, self.owner):
            raise errors.TaskCancelled()

    def enter(self, phase: str) -> None:
        """Close the current stage (its duration goes to the stage histogram), start `phase`."""
        now = time.monotonic()
        labels = {"engine": self.engine_name, "stage": self.phase}
        _record(self.ctx, "vidmorph_stage_duration_seconds", labels, now - self._phase_started)
        self.phase, self._phase_started = phase, now


class Heartbeat:
    """Renews the task's lease every lease_s / 3 from its own thread while the task runs."""

    def __init__(self, ctx: AppContext, uuid: str, owner: str) -> None:
        self.ctx, self.uuid, self.owner = ctx, uuid, owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{uuid[:8]}", daemon=True)

    def _beat(self) -> None:
        lease_s = self.ctx.settings.lease_s
        while not self._stop.wait(lease_s / 3):
            try:
                if not self.ctx.tasks.heartbeat(self.uuid, self.owner, lease_s):
                    return
            except Exception:
                # A passing database error must not end the beat while the engine still runs.
                log.exception("lease renewal for task %s failed; retrying", self.uuid)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_task(ctx: AppContext, task_uuid: str, owner: str, engine: Engine | None = None) -> None:
    """Run one task to its end. `engine` is the worker's loaded engine (a Celery worker has
    exactly one); None picks the one the settings route the task's type to."""
    task = ctx.tasks.claim(task_uuid, owner, ctx.settings.lease_s)
    if task is None:
        return
    log.info("task %s running on %s (attempt %d)", task.uuid, owner, task.attempts)
    engine_name = ctx.engine_name(task.task_type)
    _observe(ctx, "vidmorph_queue_wait_seconds", engine_name, task.created_at, task.started_at)
    notify.task_changed(ctx, task)
    hooks = TaskHooks(ctx, task, owner, engine_name)
    #: whether this run wrote the task's end; a run that lost its lease (stalled past it while
    #: another worker re-ran the task) must neither call back nor count the other run's end
    won = cancelled = False
    with Heartbeat(ctx, task.uuid, owner):
        try:
            output = _render(ctx, task, hooks, engine or ctx.engine(engine_name))
            won = ctx.tasks.succeed(task.uuid, owner, [output])
            if not won:
                delete_files(ctx, output)
        except errors.TaskCancelled:
            log.info("task %s stopped: cancelled or no longer ours", task.uuid)
            cancelled = True
        except errors.VidmorphError as exc:
            reason = getattr(exc, "reason", INTERNAL_REASON)
            won = _fail(ctx, task, owner, exc.public_message, reason)
        except Exception:
            log.exception("task %s failed", task.uuid)
            won = _fail(ctx, task, owner, "Internal error while generating.", INTERNAL_REASON)
    final = ctx.tasks.get(task.uuid)
    if final is None:
        return
    # A user's cancel is this run's end too (its callback went out with the DELETE).
    if won or (cancelled and final.status is TaskStatus.CANCELLED):
        _observe(
            ctx,
            "vidmorph_task_duration_seconds",
            engine_name,
            task.started_at,
            final.finished_at,
            status=final.status.value,
        )
    if won:
        notify.task_changed(ctx, final)


def _observe(
    ctx: AppContext,
    name: str,
    engine: str,
    start: datetime | None,
    end: datetime | None,
    **labels: str,
) -> None:
    if start is not None and end is not None:
        seconds = max((end - start).total_seconds(), 0.0)
        _record(ctx, name, {"engine": engine, **labels}, seconds)


def _record(ctx: AppContext, name: str, labels: dict[str, str], seconds: float) -> None:
    try:
        ctx.metrics.observe(name, labels, seconds)
    except Exception:
        # Metrics never fail a task.
        log.exception("could not record %s", name)


def _fail(ctx: AppContext, task: Task, owner: str, message: str, reason: str) -> bool:
    error = task_error(message, reason)
    return ctx.tasks.transition(task.uuid, TaskStatus.FAILED, owner=owner, error=error)


def _render(ctx: AppContext, task: Task, hooks: TaskHooks, engine: Engine) -> Asset:
    p = task.params
    source = ctx.assets.get(task.user_id, p.asset_uuid)
    if source is None:
        raise errors.TaskFailed("The input asset was deleted.", reason="INPUT_PREPROCESSING.ASSET")
    with (
        tempfile.TemporaryDirectory(dir=ctx.tmp_dir, prefix="task-") as work,
        contextlib.ExitStack() as stack,
    ):
        work_dir = Path(work)
        try:
            path = _with_storage(
                ctx,
                hooks,
                lambda: stack.enter_context(ctx.storage.local_copy(source.blob_key, work_dir)),
            )
        except FileNotFoundError:
            raise errors.TaskFailed(
                "The input asset's file is missing.", reason="INPUT_PREPROCESSING.ASSET"
            ) from None
        hooks.check_cancelled()
        clip = read_clip(
            path,
            width=p.width,
            height=p.height,
            fps=OUTPUT_FPS,
            max_seconds=float(p.seconds),
            on_progress=hooks.progress,
        )
        hooks.enter("engine")
        hooks.check_cancelled()
        job = GenerationInput(
            text_prompt=p.text_prompt,
            strength=p.structure_transformation / 10,
            seed=p.seed,
            width=p.width,
            height=p.height,
            fps=OUTPUT_FPS,
        )
        generated = engine.generate(clip, job, hooks)
        hooks.check_cancelled()
        hooks.enter("encode")
        asset = _store_output(ctx, task, generated, path, source, hooks, work_dir)
        hooks.enter("done")
        return asset


#: first pause between tries of an unreachable object store; doubles up to _STORAGE_PAUSE_MAX_S
_STORAGE_PAUSE_S = 0.5
_STORAGE_PAUSE_MAX_S = 5.0


def _with_storage(ctx: AppContext, hooks: TaskHooks, call: Callable[[], T]) -> T:
    """`call()`, tried again while the object store is unreachable, for up to
    `storage_retry_s`; then the task fails with a message that says so."""
    deadline = time.monotonic() + ctx.settings.storage_retry_s
    pause = _STORAGE_PAUSE_S
    while True:
        try:
            return call()
        except errors.StorageUnavailable as exc:
            if time.monotonic() + pause > deadline:
                raise errors.TaskFailed(
                    f"Media storage stayed unreachable for {ctx.settings.storage_retry_s:.0f} s:"
                    f" {exc.public_message}",
                    reason="INTERNAL.STORAGE_UNAVAILABLE",
                ) from exc
            log.warning(
                "task %s: storage unreachable; trying again in %.1fs", hooks.task.uuid, pause
            )
            time.sleep(pause)
            hooks.check_cancelled()
            pause = min(pause * 2, _STORAGE_PAUSE_MAX_S)


def _store_output(
    ctx: AppContext,
    task: Task,
    clip: Clip,
    source_path: Path,
    source: Asset,
    hooks: TaskHooks,
    work_dir: Path,
) -> Asset:
    uid = ids.new_uuid()
    base = f"{task.user_id}/{uid}"
    video, preview = work_dir / "video.mp4", work_dir / "preview.jpg"
    write_mp4(clip, video, audio_from=source_path, on_progress=hooks.progress)
    write_jpeg(clip.frames[0], preview)
    size_bytes = video.stat().st_size
    _with_storage(ctx, hooks, lambda: ctx.storage.put(f"{base}/video.mp4", video))
    try:
        _with_storage(ctx, hooks, lambda: ctx.storage.put(f"{base}/preview.jpg", preview))
    except BaseException:
        # No asset will own the video: take it back out (best effort) before failing.
        with contextlib.suppress(Exception):
            ctx.storage.delete(f"{base}/video.mp4")
        raise
    has_audio = bool(source.meta and source.meta.has_audio)
    meta = MediaMeta(
        duration_s=clip.duration_s,
        fps=clip.fps,
        width=clip.width,
        height=clip.height,
        has_audio=has_audio,
        has_alpha=False,
    )
    now = utcnow()
    p = task.params
    return Asset(
        uuid=uid,
        user_id=task.user_id,
        email=task.email,
        name=task_name(task.task_type, p.seed, p.text_prompt),
        media_type="video",
        content_type="video/mp4",
        ext="mp4",
        blob_key=f"{base}/video.mp4",
        preview_key=f"{base}/preview.jpg",
        size_bytes=size_bytes,
        meta=meta,
        is_user_upload=False,
        task_uuid=task.uuid,
        created_at=now,
        updated_at=now,
    )
