"""Running a task on an upstream engine (VIDMORPH_ENGINE=runway): hand over, follow, take back.

The engine gets the input's file and writes the service's output video; that output then goes
through the usual stages with an identity engine, so it is fitted to the task's frame, rate and
length (and its audio kept) like any input, and stored like any output.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vidmorph import errors
from vidmorph.domain.models import Task
from vidmorph.engines.base import EngineInfo, GenerationInput, RunHooks
from vidmorph.engines.pipelines import passthrough
from vidmorph.media.clip import RGB24, YUV420P, ClipStream, Frames
from vidmorph.media.probe import MediaInfo, probe
from vidmorph.service.context import AppContext
from vidmorph.upstream.base import Upstream, UpstreamJob


class Identity:
    """The frame engine that returns its input: fits an upstream output to the task."""

    info = EngineInfo(
        "identity", ("cpu",), float("inf"), deterministic=True, pixel_formats=(YUV420P, RGB24)
    )

    def load(self, device: str) -> None:
        return None

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: RunHooks) -> Iterator[Frames]:
        return passthrough(clip, _Quiet(hooks))


class _Quiet:
    """The task's hooks less progress: the upstream engine's progress stands until the end."""

    def __init__(self, hooks: RunHooks) -> None:
        self._hooks = hooks

    def progress(self, ratio: float) -> None:
        return None

    def check_cancelled(self) -> None:
        self._hooks.check_cancelled()


def hand_over(
    ctx: AppContext,
    task: Task,
    hooks: RunHooks,
    engine: Upstream,
    job: GenerationInput,
    source: Path,
    work_dir: Path,
) -> tuple[Path, MediaInfo]:
    """Run the task upstream; the downloaded output and what the probe says of it."""
    out = work_dir / "upstream.mp4"
    work = UpstreamJob(
        job=job,
        resume_id=ctx.upstream_jobs.get(task.uuid),
        remember=lambda upstream_id: ctx.upstream_jobs.remember(task.uuid, upstream_id),
    )
    engine.run_upstream(source, work, hooks, out)
    try:
        info = probe(out, max_pixels=ctx.settings.max_input_pixels)
    except errors.BadRequest as exc:
        raise errors.TaskFailed(
            f"The upstream output is not a usable video: {exc.public_message}",
            reason="INTERNAL.BAD_OUTPUT",
        ) from None
    return out, info
