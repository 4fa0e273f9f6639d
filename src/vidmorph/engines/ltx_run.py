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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vidmorph.engines.diffusion import (
    Frames,
    SpeedRecord,
    StepProgress,
    TokenGeometry,
    Window,
    compute_dtype,
    pad_frames,
    place_window,
    seeded_generator,
    window_seed,
)
from vidmorph.media.clip import Clip

if TYPE_CHECKING:
    import torch
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

MAX_SEQUENCE_LENGTH = 128  # T5 tokens, as the LTX docs use; ample for a 1000-character prompt
# LTX's 0.9.1+ VAEs decode at a small timestep with a little noise (LTX docs); the pipeline
# ignores both for VAEs without timestep conditioning.
DECODE_TIMESTEP, DECODE_NOISE_SCALE = 0.05, 0.025


@dataclass(frozen=True)
class Plan:
    """The windows of one clip and the frame size it is padded to (the VAE's multiple)."""

    windows: list[Window]
    height: int
    width: int


@dataclass(frozen=True)
class Sampling:
    """How every window of a call is sampled."""

    timesteps: tuple[float, ...]
    guidance_scale: float
    strength: float  # denoise_strength, already clamped by the engine
    steps: int  # denoising steps that strength leaves, > 0
    seed: int
    embeds: dict[str, Any]  # prompt_embeds, prompt_attention_mask (+ negative ones with CFG)


class LtxRun:
    """Runs a plan's windows into one output array, reporting progress per denoising step."""

    def __init__(
        self,
        pipe: LTXConditionPipeline,
        device: torch.device,
        plan: Plan,
        sampling: Sampling,
        *,
        geometry: TokenGeometry,
        speed: SpeedRecord,
        progress: StepProgress,
    ) -> None:
        self.pipe, self.device, self.plan, self.sampling = pipe, device, plan, sampling
        self.dtype = compute_dtype(device)
        self.speed, self.progress = speed, progress
        self.tokens = [geometry.tokens(w.num_frames, plan.height, plan.width) for w in plan.windows]

    def frames(self, clip: Clip) -> Frames:
        """The clip's new frames: padded to the plan, generated window by window, cropped back."""
        import torch

        plan = self.plan
        frames = pad_frames(clip.frames, plan.windows[-1].stop, plan.height, plan.width)
        out = np.empty_like(frames)
        with torch.no_grad():
            for window in plan.windows:
                self.progress.start_window(window.index)
                made = self._window(frames, out, window, max(1, round(clip.fps)))
                place_window(out, made, window)
                self.progress.window_done()
        return np.ascontiguousarray(out[: clip.num_frames, : clip.height, : clip.width])

    def _window(self, frames: Frames, out: Frames, window: Window, fps: int) -> Frames:
        """One pipeline call: SDEdit from the window's input, conditioned on earlier output."""
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        sampling = self.sampling
        started, allocated = time.perf_counter(), self._reset_peak()
        latents = self._encode(frames[window.start : window.stop])
        conditions = None
        if window.overlap:
            # The previous window's tail: plan_windows keeps it clear of any cross-fade.
            tail = self._tensor(out[window.start : window.start + window.overlap])
            # diffusers hints a list of PIL images; its video processor takes tensors as well.
            condition = LTXVideoCondition(video=tail, frame_index=0, strength=1.0)  # type: ignore[arg-type]
            conditions = [condition]
        called = time.perf_counter()
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
            generator=seeded_generator(self.device, window_seed(sampling.seed, window.index)),
            output_type="pt",
            callback_on_step_end=self.progress.on_step_end,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            **sampling.embeds,
        )
        made = _to_frames(result.frames[0])
        self._observe(window, started, called, allocated)
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
        posterior = pipe.vae.encode(video.to(self.device, self.dtype)).latent_dist
        latents: torch.Tensor = pipe._normalize_latents(
            posterior.mode(),
            pipe.vae.latents_mean,
            pipe.vae.latents_std,
            pipe.vae.config.scaling_factor,
        )
        return latents

    def _reset_peak(self) -> int:
        """Bytes allocated before a window, with the peak counter restarted (CUDA only)."""
        if self.device.type != "cuda":
            return 0
        import torch

        torch.cuda.reset_peak_memory_stats(self.device)
        return int(torch.cuda.memory_allocated(self.device))

    def _observe(self, window: Window, started: float, called: float, allocated: int) -> None:
        """Feed the window's measured times (and CUDA peak memory) into the speed record."""
        ended, tokens = time.perf_counter(), self.tokens[window.index]
        denoised = max(self.progress.last_step_at, called)
        self.speed.observe_window(
            denoise_s=denoised - called,
            steps=self.sampling.steps,
            tokens=tokens,
            codec_s=(called - started) + (ended - denoised),
            pixels=window.num_frames * self.plan.height * self.plan.width,
        )
        if self.device.type == "cuda":
            import torch

            peak = int(torch.cuda.max_memory_allocated(self.device))
            self.speed.observe_peak(peak - allocated, tokens)


def _to_frames(video: torch.Tensor) -> Frames:
    """Pipeline output (F, 3, H, W) in 0..1 as uint8 (F, H, W, 3) on the host."""
    import torch

    scaled = (video * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    frames: Frames = scaled.permute(0, 2, 3, 1).cpu().numpy()
    return frames
