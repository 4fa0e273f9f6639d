"""The Engine protocol every generator implements, and what it is given to run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from vidmorph.media import pixels
from vidmorph.media.clip import BATCH_FRAMES, RGB24, Clip, ClipStream, Frames


@dataclass(frozen=True)
class EngineInfo:
    name: str
    #: devices the engine can run on, e.g. ("cpu",) or ("cuda",)
    devices: tuple[str, ...]
    #: the longest output one call may produce
    max_seconds: float
    #: same input, prompt, strength and seed give the same frames
    deterministic: bool
    #: the pixel formats `generate` takes (and answers in), preferred first
    pixel_formats: tuple[str, ...] = (RGB24,)


@dataclass(frozen=True)
class GenerationInput:
    text_prompt: str
    #: structure_transformation / 10: 0 keeps the input, 1 departs from it the most
    strength: float
    seed: int
    width: int
    height: int
    fps: float


class RunHooks(Protocol):
    """What a running engine reports to, once per frame batch or denoising step.

    `progress(ratio)` takes 0..1 of the engine's own work. `check_cancelled()` raises
    `vidmorph.errors.TaskCancelled` when the task was cancelled; the engine lets it propagate.
    """

    def progress(self, ratio: float) -> None: ...

    def check_cancelled(self) -> None: ...


@runtime_checkable
class Estimating(Protocol):
    """An engine that can tell, before running, whether a job fits this worker."""

    def check_fits(
        self,
        num_frames: int,
        height: int,
        width: int,
        strength: float,
        *,
        budget_bytes: int | None = None,
    ) -> Any:
        """The estimate; raises `vidmorph.errors.RequestTooLarge` when the job cannot fit.

        `budget_bytes` is the device memory the engine's workers published, for an API process
        that does not load the engine itself; a configured budget wins over it."""


class Engine(Protocol):
    """A generator. `load(device)` runs once per worker process, before any `generate`.

    `generate` is a stream transform: it reads `clip.batches` as it needs them and yields
    output frames in batches (any sizes) that total `clip.num_frames`, at the input's size, fps
    and pixel format (one of `info.pixel_formats`), handing each frame on as soon as it is
    final. It holds a window at most, never the clip. The worker runs it on its own thread,
    between the decoder's thread and the encoder's, and closes it (GeneratorExit at a
    `yield`) when another stage fails. One worker thread iterates an engine at a time; the
    worker serialises calls per engine.
    """

    info: EngineInfo

    def load(self, device: str) -> None: ...

    def generate(
        self, clip: ClipStream, job: GenerationInput, hooks: RunHooks
    ) -> Iterator[Frames]: ...


def generate_clip(
    engine: Engine,
    clip: Clip,
    job: GenerationInput,
    hooks: RunHooks,
    *,
    batch_frames: int = BATCH_FRAMES,
    pixel_format: str = RGB24,
) -> Clip:
    """A whole clip through `engine`'s stream in `pixel_format`, collected as RGB (short
    clips, tests, benchmarks)."""
    stream = pixels.converted(clip.stream(batch_frames), pixel_format)
    made = stream.with_batches(engine.generate(stream, job, hooks))
    return pixels.to_rgb(made).collect()
