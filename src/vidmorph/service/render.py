"""Rendering a claimed task: its input streamed through decode, engine and encode into an asset.

The three stages overlap on their own threads with bounded queues between them
(`media.stream.Prefetch`): the decoder runs a couple of batches ahead of the engine and the
engine a couple ahead of the encoder, so memory holds a few batches per stage plus the
engine's window, whatever the clip's length, and the engine's work hides behind the codec's.
A stage that fails (cancel, engine error, damaged input, a full disk) stops the others through
one shared flag, which the engine also sees at every `hooks.check_cancelled()`; every thread is
joined before the task moves on, the work directory goes with any partial file, and the first
error is the task's.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from vidmorph import errors
from vidmorph.domain import ids
from vidmorph.domain.clock import utcnow
from vidmorph.domain.models import OUTPUT_FPS, Asset, MediaMeta, Task
from vidmorph.engines.base import Engine, GenerationInput
from vidmorph.media import pixels
from vidmorph.media.clip import PIXEL_FORMATS, RGB24, ClipStream, Frames
from vidmorph.media.decode import FrameReader
from vidmorph.media.encode import write_jpeg, write_mp4
from vidmorph.media.stream import Prefetch
from vidmorph.service import notify, upstream
from vidmorph.service.context import AppContext
from vidmorph.service.views import task_name
from vidmorph.upstream.base import Upstream

log = logging.getLogger(__name__)
T = TypeVar("T")

#: batches a stage may hold ready for the next one
QUEUE_BATCHES = 2
#: how often the encoder stage looks for a cancel itself
_CANCEL_CHECK_S = 1.0
#: errnos that mean the work directory's disk is full
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


#: share of progressRatio the engine's own progress covers; encoding ends with the engine
_ENGINE_SHARE = 0.99


class TaskHooks:
    """RunHooks for one task: progress to the row (and throttled callbacks), cancel checks,
    the pipeline's stop flag and each stage's time."""

    def __init__(self, ctx: AppContext, task: Task, owner: str, engine_name: str) -> None:
        self.ctx, self.task, self.owner, self.engine_name = ctx, task, owner, engine_name
        #: set when a stage ends early: every other stage stops at its next check or hand-over
        self.stop = threading.Event()
        self._last_write = 0.0
        self._last_ratio = -1.0

    def progress(self, ratio: float) -> None:
        overall = round(_ENGINE_SHARE * min(max(ratio, 0.0), 1.0), 4)
        now = time.monotonic()
        if overall - self._last_ratio < 0.01 and now - self._last_write < 1.0:
            return
        self._last_write, self._last_ratio = now, overall
        text = f"Engine {round(ratio * 100)}%"
        if not self.ctx.tasks.set_progress(self.task.uuid, self.owner, overall, text):
            raise errors.TaskCancelled()
        notify.task_progressed(self.ctx, self.task)

    def check_cancelled(self) -> None:
        if self.stop.is_set():
            raise errors.StageStopped()
        if not self.ctx.tasks.is_running_for(self.task.uuid, self.owner):
            raise errors.TaskCancelled()

    def stage_done(self, stage: str, seconds: float) -> None:
        """A stage handed on its last frame `seconds` after the pipeline started."""
        labels = {"engine": self.engine_name, "stage": stage}
        try:
            self.ctx.metrics.observe("vidmorph_stage_duration_seconds", labels, seconds)
        except Exception:
            log.exception("could not record the %s stage's time", stage)  # never fails a task


def render(ctx: AppContext, task: Task, hooks: TaskHooks, engine: Engine | Upstream) -> Asset:
    """The task's output asset: input fetched, streamed through `engine`, encoded, stored. An
    upstream engine makes the video elsewhere first (service.upstream), which is then fitted
    to the task through the same stages."""
    p = task.params
    source = ctx.assets.get(task.user_id, p.asset_uuid)
    if source is None:
        raise errors.TaskFailed("The input asset was deleted.", reason="ASSET.INVALID")
    with (
        tempfile.TemporaryDirectory(dir=ctx.tmp_dir, prefix="task-") as work,
        contextlib.ExitStack() as stack,
    ):
        work_dir = Path(work)
        try:
            path = with_storage(
                ctx,
                hooks,
                lambda: stack.enter_context(ctx.storage.local_copy(source.blob_key, work_dir)),
            )
        except FileNotFoundError:
            raise errors.TaskFailed(
                "The input asset's file is missing.", reason="ASSET.INVALID"
            ) from None
        hooks.check_cancelled()
        job = GenerationInput(
            text_prompt=p.text_prompt,
            strength=p.structure_transformation / 10,
            seed=p.seed,
            width=p.width,
            height=p.height,
            fps=OUTPUT_FPS,
        )
        duration_s = source.meta.duration_s if source.meta else None
        has_audio = bool(source.meta and source.meta.has_audio)
        frames: Engine
        if isinstance(engine, Upstream):
            path, made = upstream.hand_over(ctx, task, hooks, engine, job, path, work_dir)
            duration_s, has_audio, frames = made.duration_s, made.has_audio, upstream.Identity()
        else:
            frames = engine
        reader = FrameReader(
            path,
            width=p.width,
            height=p.height,
            fps=OUTPUT_FPS,
            max_seconds=float(p.seconds),
            duration_s=duration_s,
            max_pixels=ctx.settings.max_input_pixels,
            pixel_format=pixel_format(frames),
        )
        stack.enter_context(reader)
        video, preview = work_dir / "video.mp4", work_dir / "preview.jpg"
        try:
            first = run_stages(reader, frames, job, hooks, video, audio_from=path)
            write_jpeg(first, preview)
        except OSError as error:
            if error.errno in _DISK_FULL:
                raise errors.TaskFailed(
                    "The worker ran out of disk space while encoding."
                ) from error
            raise
        meta = MediaMeta(
            duration_s=reader.num_frames / reader.fps,
            fps=reader.fps,
            width=reader.width,
            height=reader.height,
            has_audio=has_audio,
            has_alpha=False,
        )
        return _store_output(ctx, task, meta, video, preview, hooks)


def pixel_format(engine: Engine) -> str:
    """The engine's preferred pixel format among those the decoder and encoder speak: YUV420P
    spares both their RGB conversions (the output's sizes are always even)."""
    return next((fmt for fmt in engine.info.pixel_formats if fmt in PIXEL_FORMATS), RGB24)


def run_stages(
    reader: FrameReader,
    engine: Engine,
    job: GenerationInput,
    hooks: TaskHooks,
    video: Path,
    *,
    audio_from: Path,
) -> Frames:
    """Decode, engine and encode at once, into `video`; returns the first output frame (RGB)."""
    started = time.monotonic()
    stop = hooks.stop
    first: list[Frames] = []

    def timed(items: Iterator[Frames], stage: str) -> Iterator[Frames]:
        yield from items
        hooks.stage_done(stage, time.monotonic() - started)

    def keep_first(items: Iterator[Frames]) -> Iterator[Frames]:
        """The engine's batches, keeping the first frame; a cancel is seen here too, about
        once a second, whatever the engine checks itself."""
        checked = time.monotonic()
        for batch in items:
            if not first and len(batch):
                first.append(batch[0].copy())
            if time.monotonic() - checked >= _CANCEL_CHECK_S:
                hooks.check_cancelled()
                checked = time.monotonic()
            yield batch

    size = (reader.num_frames, reader.width, reader.height, reader.fps, reader.pixel_format)
    with Prefetch(
        timed(reader.batches(), "decode"), depth=QUEUE_BATCHES, name="task-decode", stop=stop
    ) as decoded:
        made = engine.generate(ClipStream(decoded, *size), job, hooks)
        with Prefetch(
            timed(made, "engine"), depth=QUEUE_BATCHES, name="task-engine", stop=stop
        ) as generated:
            write_mp4(ClipStream(keep_first(generated), *size), video, audio_from=audio_from)
        # An engine may stop reading at its last frame, before the decoder's end: take the end
        # too, so the decoder finishes rather than being stopped. Damage past the frames the
        # output needed does not fail a whole output.
        with contextlib.suppress(errors.InvalidMedia):
            for _ in decoded:
                pass
    hooks.stage_done("encode", time.monotonic() - started)
    hooks.check_cancelled()
    if reader.pixel_format == RGB24:
        return first[0]
    to_rgb = pixels.Converter(reader.pixel_format, RGB24, reader.width, reader.height)
    return to_rgb.convert(first[0])


#: first pause between tries of an unreachable object store; doubles up to _STORAGE_PAUSE_MAX_S
_STORAGE_PAUSE_S = 0.5
_STORAGE_PAUSE_MAX_S = 5.0


def with_storage(ctx: AppContext, hooks: TaskHooks, call: Callable[[], T]) -> T:
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
    meta: MediaMeta,
    video: Path,
    preview: Path,
    hooks: TaskHooks,
) -> Asset:
    uid = ids.new_uuid()
    base = f"{task.user_id}/{uid}"
    size_bytes = video.stat().st_size
    with_storage(ctx, hooks, lambda: ctx.storage.put(f"{base}/video.mp4", video))
    try:
        with_storage(ctx, hooks, lambda: ctx.storage.put(f"{base}/preview.jpg", preview))
    except BaseException:
        # No asset will own the video: take it back out (best effort) before failing.
        with contextlib.suppress(Exception):
            ctx.storage.delete(f"{base}/video.mp4")
        raise
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
