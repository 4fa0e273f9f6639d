"""One LTX-Video generate call: the clip's windows, run one after another through the pipeline.

Each window is SDEdit from the input (its frames' normalised VAE latents as `latents`, with
`denoise_strength`); every window after the first is also hard-conditioned on the last
`overlap` frames of the previous window's output (`LTXVideoCondition` at frame 0, strength 1,
no conditioning noise: those latent frames stay frozen at timestep 0) and cross-faded into them
(research/models.md §4.1). `ltx.py` owns the weights and decides what to run; this module only
runs it, measuring each window for the engine's cost model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vidmorph.engines.base import RunHooks
from vidmorph.engines.costs import SpeedRecord, TokenGeometry, WindowMeter
from vidmorph.engines.devices import (
    check_finite,
    synchronize,
    window_generator,
)
from vidmorph.engines.diffusion import Frames, Plan, Sampling, Window, stream_windows
from vidmorph.media.clip import BATCH_FRAMES, ClipStream

if TYPE_CHECKING:
    import torch
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

MAX_SEQUENCE_LENGTH = 128  # T5 tokens, as the LTX docs use; ample for a 1000-character prompt
# LTX's 0.9.1+ VAEs decode at a small timestep with a little noise (LTX docs); the pipeline
# ignores both for VAEs without timestep conditioning.
DECODE_TIMESTEP, DECODE_NOISE_SCALE = 0.05, 0.025


@dataclass(frozen=True)
class LtxSampling(Sampling):
    """How every window of a call is sampled: the shared settings and LTX's timesteps."""

    timesteps: tuple[float, ...]


class LtxRun:
    """Runs a plan's windows into one output array, reporting progress per denoising step."""

    def __init__(
        self,
        pipe: LTXConditionPipeline,
        device: torch.device,
        plan: Plan,
        sampling: LtxSampling,
        *,
        geometry: TokenGeometry,
        speed: SpeedRecord,
        hooks: RunHooks,
    ) -> None:
        self.pipe, self.device, self.plan, self.sampling = pipe, device, plan, sampling
        self.meter = WindowMeter(
            device, plan, hooks, steps=sampling.steps, geometry=geometry, record=speed
        )

    def frames(self, clip: ClipStream) -> Iterator[Frames]:
        """The clip's new frames, window by window as the input arrives, padded to the plan
        for the model and cropped back to the clip's size on the way out."""
        fps = max(1, round(clip.fps))

        def make(frames: Frames, tail: Frames | None, window: Window) -> Frames:
            return self._window(frames, tail, window, fps)

        made = stream_windows(self.plan, clip.frames(), clip.num_frames, self.meter.progress, make)
        for window_out in made:
            # In small batches: the encoder's queue then holds a few frames, not windows.
            for start in range(0, len(window_out), BATCH_FRAMES):
                batch = window_out[start : start + BATCH_FRAMES]
                yield np.ascontiguousarray(batch[:, : clip.height, : clip.width])

    def _window(self, frames: Frames, tail: Frames | None, window: Window, fps: int) -> Frames:
        """One pipeline call: SDEdit from the window's input, conditioned on earlier output."""
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        sampling = self.sampling
        self.meter.start()
        latents = self._encode(frames)
        conditions = None
        if tail is not None:
            # The previous window's tail: plan_windows keeps it clear of any cross-fade.
            # diffusers hints a list of PIL images; its video processor takes tensors as well.
            condition = LTXVideoCondition(video=self._tensor(tail), frame_index=0, strength=1.0)  # type: ignore[arg-type]
            conditions = [condition]
        synchronize(self.device)  # the VAE encode above counts as codec time, not denoising
        called = time.perf_counter()
        with window_generator(self.device, sampling.seed, window.index) as generator:
            result = self.pipe(
                conditions=conditions,
                latents=latents,
                denoise_strength=sampling.strength,
                height=self.plan.height,
                width=self.plan.width,
                num_frames=window.num_frames,
                frame_rate=fps,  # scales LTX's RoPE time axis
                timesteps=list(sampling.timesteps),
                guidance_scale=sampling.guidance_scale,
                # The conditioning frames are earlier output itself: keep them exact.
                image_cond_noise_scale=0.0,
                decode_timestep=DECODE_TIMESTEP,
                decode_noise_scale=DECODE_NOISE_SCALE,
                generator=generator,
                output_type="pt",
                callback_on_step_end=self.meter.progress.on_step_end,
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                **sampling.embeds,
            )
        made = _to_frames(result.frames[0])
        self._observe(window, called)
        return made

    def _tensor(self, frames: Frames) -> torch.Tensor:
        """uint8 (F, H, W, 3) frames as float (F, 3, H, W) in 0..1 on the device."""
        import torch

        moved = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return moved.permute(0, 3, 1, 2).float().div_(255.0)

    def _encode(self, frames: Frames) -> torch.Tensor:
        """The normalised VAE latents (1, C, F', H', W') LTX's SDEdit path takes as `latents`."""
        pipe = self.pipe
        height, width = frames.shape[1:3]
        video = pipe.video_processor.preprocess_video(self._tensor(frames), height, width)
        posterior = pipe.vae.encode(video.to(self.device, pipe.vae.dtype)).latent_dist
        latents: torch.Tensor = pipe._normalize_latents(
            posterior.mode(),
            pipe.vae.latents_mean,
            pipe.vae.latents_std,
            pipe.vae.config.scaling_factor,
        )
        return latents

    def _observe(self, window: Window, called: float) -> None:
        """The window's measured times: denoising from the call to its last step's end, the
        codec (VAE encode before the call, decode after the last step) the rest."""
        ended = time.perf_counter()
        denoised = max(self.meter.progress.last_step_at, called)
        self.meter.observe(
            window,
            denoise_s=denoised - called,
            steps=self.sampling.steps,
            codec_s=(called - self.meter.started) + (ended - denoised),
        )


def _to_frames(video: torch.Tensor) -> Frames:
    """Pipeline output (F, 3, H, W) in 0..1 as uint8 (F, H, W, 3) on the host; scaled in
    float32, since bf16 output holds only 8 significant bits (x255 would lose levels)."""
    import torch

    check_finite(video)
    scaled = video.float().mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)  # one copy
    frames: Frames = scaled.permute(0, 2, 3, 1).cpu().numpy()
    return frames
