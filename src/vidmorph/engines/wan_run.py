"""One Wan 2.1 generate call: the clip at 16 fps and the working size, windows one after another.

The clip is resampled by timestamps to the model's 16 fps and resized to the plan's working
size, run window by window through `WanVideoToVideoPipeline` (SDEdit from the window's input,
whose first `overlap` frames are replaced by the previous window's output tail), and brought
back to the clip's frame count, fps and size. `wan.py` owns the weights and decides what to
run; this module only runs it, measuring each window for the engine's cost model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from vidmorph.engines.base import RunHooks
from vidmorph.engines.costs import SpeedRecord, TokenGeometry, WindowMeter
from vidmorph.engines.devices import check_finite, window_generator
from vidmorph.engines.diffusion import Frames, Plan, Sampling, Window, stream_windows
from vidmorph.engines.frames import nearest_frames, pick_frames, resize_frame, stack_batches
from vidmorph.media.clip import BATCH_FRAMES, ClipStream

if TYPE_CHECKING:
    import torch

#: diffusers' WanVideoToVideoPipeline registers its components at run time, so mypy sees no
#: `transformer`, `scheduler` or `__call__` on it: typed loosely here.
WanPipeline = Any

MODEL_FPS = 16.0
MAX_SEQUENCE_LENGTH = 512  # umT5 tokens, Wan's own


@dataclass(frozen=True)
class WanPlan(Plan):
    """How a clip runs: the windows over its 16 fps frames, at the working size."""

    model_frames: int  # 16 fps frames that carry the clip, before window padding


@dataclass(frozen=True)
class WanSampling(Sampling):
    """How every window of a call is sampled: the shared settings and Wan's schedule length."""

    num_inference_steps: int


class WanRun:
    """Runs a plan's windows at 16 fps and the working size, reporting progress per step."""

    def __init__(
        self,
        pipe: WanPipeline,
        device: torch.device,
        plan: WanPlan,
        sampling: WanSampling,
        *,
        geometry: TokenGeometry,
        speed: SpeedRecord,
        hooks: RunHooks,
    ) -> None:
        self.pipe, self.device, self.plan, self.sampling = pipe, device, plan, sampling
        self.meter = WindowMeter(
            device, plan, hooks, steps=sampling.steps, geometry=geometry, record=speed
        )
        self._first_step_at = 0.0

    def frames(self, clip: ClipStream) -> Iterator[Frames]:
        """The clip through the model: to 16 fps and the working size, windows, and back, each
        step reading the one before as a stream."""
        plan = self.plan
        to_model = nearest_frames(plan.model_frames, MODEL_FPS, clip.fps, clip.num_frames)
        source = (
            resize_frame(frame, plan.width, plan.height)
            for frame in pick_frames(clip.frames(), to_model)
        )
        made = stream_windows(plan, source, plan.model_frames, self.meter.progress, self._window)
        back = nearest_frames(clip.num_frames, clip.fps, MODEL_FPS, plan.model_frames)
        model_out = (frame for batch in made for frame in batch)
        restored = (
            resize_frame(frame, clip.width, clip.height) for frame in pick_frames(model_out, back)
        )
        yield from stack_batches(restored, BATCH_FRAMES)

    def _window(self, source: Frames, tail: Frames | None, window: Window) -> Frames:
        """One pipeline call: SDEdit from the window's input, its head the previous output."""
        sampling = self.sampling
        video = source
        if tail is not None:
            video = source.copy()
            video[: len(tail)] = tail
        self.meter.start()
        with window_generator(self.device, sampling.seed, window.index) as generator:
            result = self.pipe(
                video=[Image.fromarray(frame) for frame in video],
                height=self.plan.height,
                width=self.plan.width,
                strength=sampling.strength,
                num_inference_steps=sampling.num_inference_steps,
                guidance_scale=sampling.guidance_scale,
                generator=generator,
                output_type="np",
                callback_on_step_end=self._on_step_end,
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                **sampling.embeds,
            )
        check_finite(result.frames[0])
        made: Frames = np.clip(np.rint(result.frames[0] * 255.0), 0, 255).astype(np.uint8)
        self._observe(window)
        return made

    def _on_step_end(
        self, pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        kwargs = self.meter.progress.on_step_end(pipeline, step, timestep, callback_kwargs)
        if step == 0:  # Wan encodes the video inside the call: time steps from the first end
            self._first_step_at = self.meter.progress.last_step_at  # after the device sync
        return kwargs

    def _observe(self, window: Window) -> None:
        """The window's measured times: denoising from the mean step between the first and
        last step's ends (step 0's own time is not seen), the codec the rest of the call."""
        ended, steps = time.perf_counter(), self.sampling.steps
        last, first = self.meter.progress.last_step_at, self._first_step_at
        step_s = (last - first) / (steps - 1) if steps > 1 else 0.0
        denoise_s = step_s * steps
        self.meter.observe(
            window,
            denoise_s=denoise_s,
            steps=steps if step_s else 0,
            codec_s=max(0.0, ended - self.meter.started - denoise_s),
        )
