"""The Wan 2.1 engine: SDEdit video-to-video with diffusers' `WanVideoToVideoPipeline`.

Wan's rules (research/models.md §1.1-1.2) and how the engine meets them:

- **16 fps.** The clip (24 fps) is resampled by timestamps to 16 fps for the model: model frame
  j shows the clip frame nearest to j/16 s (ties to the earlier one). The result goes back the
  same way: output frame i is the model frame nearest to i/24 s, so the output has exactly the
  clip's frame count and fps and each output frame lags or leads its input by at most half a
  model frame (31 ms). No frame blending: blends ghost, a 3:2-like cadence does not.
- **4k+1 frames, sizes divisible by 16.** Windows are planned with `frame_multiple=4` and the
  last one padded by repeating the final frame. Frames run at the clip's size when it is at most
  the checkpoint's native area (832x480 for 1.3B, 1280x720 for 14B, +10%); a larger clip is
  scaled down to that area (sides rounded to 16) and the output scaled back up. The 1280x768
  contract size thus runs at 816x496 on 1.3B and at full size on 14B. UniPC's `flow_shift` is
  set to 3.0 up to 480p-sized areas and 5.0 above, as Wan's authors recommend.
- **Strength** (`job.strength`) is SDEdit's: int(steps * strength) of the steps run. When that
  rounds to 0 (strength 0, or below 1/30 at 30 steps) the input comes back unchanged and no
  model runs. Strength 1 is clamped to 0.99: at 1 the schedule starts at sigma 1, pure noise,
  and the input is ignored; at 0.99 the sample starts from the input under 98.9% noise (the LTX
  engine makes the same choice).
- **Long clips** run as overlapping windows of 81 frames (Wan's native 5 s) sharing 17 (four
  latent frames plus the causal first one, about 1 s). Wan v2v has no condition input, so the
  next window is conditioned the simplest faithful way: its first 17 input frames are replaced
  by the previous window's output tail before SDEdit, so the model sees, re-noises and
  continues the look it already produced; the new window's head is then cross-faded linearly
  into that tail (`diffusion.place_window`).

Weights load once: bf16 transformer and text encoder on a GPU, the VAE in float32 (Wan's VAE
loses detail in bf16), VAE tiling on. The umT5-XXL encoder (11 GB) lives on the CPU and visits
the device only to encode a prompt; the last prompt's embeddings are cached.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from vidmorph.config import Settings
from vidmorph.engines.base import EngineInfo, GenerationInput, RunHooks
from vidmorph.engines.diffusion import (
    Estimate,
    Frames,
    SpeedRecord,
    StepProgress,
    TokenGeometry,
    Window,
    available_memory_bytes,
    compute_dtype,
    denoising_steps,
    estimate_windows,
    module_bytes,
    pad_frames,
    place_window,
    plan_windows,
    resolve_device,
    run_releasing,
    seeded_generator,
    window_seed,
)
from vidmorph.errors import RequestTooLarge
from vidmorph.media.clip import Clip

if TYPE_CHECKING:
    import torch

#: diffusers' WanVideoToVideoPipeline registers its components at run time, so mypy sees no
#: `transformer`, `scheduler` or `__call__` on it: typed loosely here.
WanPipeline = Any

MODEL_FPS = 16.0
WINDOW_FRAMES = 81
OVERLAP_FRAMES = 17
NUM_INFERENCE_STEPS = 30  # UniPC converges in 30; Wan's 50 buys little for SDEdit
GUIDANCE_SCALE = 5.0
MAX_STRENGTH = 0.99  # see the module docstring
MAX_SEQUENCE_LENGTH = 512  # umT5 tokens, Wan's own
SIZE_MULTIPLE = 16  # VAE 8x, then 2x2 patches
_TIE_EPSILON = 1e-6  # frame positions exactly halfway between two frames take the earlier
# Wan's recommended negative prompt without "style, works, paintings, images", which would
# fight the restyling prompts this service exists for; "flicker" added for video-to-video.
NEGATIVE_PROMPT = (
    "overexposed, static, blurred details, subtitles, overall gray, worst quality, low quality, "
    "JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn "
    "faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy "
    "background, flicker"
)
# Native areas: 1.3B was trained at 832x480, 14B at 1280x720; 14B has over 5e9 parameters.
SMALL_AREA_PX, LARGE_AREA_PX, LARGE_MODEL_PARAMS = 832 * 480, 1280 * 720, 5 * 10**9
AREA_SLACK = 1.1  # 1280x768 is 7% over 1280x720: not worth a resample on 14B
FLOW_SHIFT_480P, FLOW_SHIFT_720P, FLOW_SHIFT_720P_FROM_PX = 3.0, 5.0, 600_000
# Before load, estimates go by the name: transformer parameters and resident bytes (bf16
# transformer, float32 VAE) of 1.3B and 14B; umT5-XXL's encoder (5.7B parameters, bf16)
# visits the GPU only to encode a prompt.
SMALL_PARAMS, SMALL_RESIDENT_BYTES = 142 * 10**7, 34 * 10**8
LARGE_PARAMS, LARGE_RESIDENT_BYTES = 14 * 10**9, 286 * 10**8
DEFAULT_TEXT_ENCODER_BYTES = 114 * 10**8
# Starting cost model, replaced by measurements. Wan 14B, 720p, 81 frames (75,600 tokens),
# 40 steps with CFG took 974 s on an H200 (models.md §3.1): 3.2e-4 s per step-token, 2.3e-14
# per transformer parameter (both CFG passes included); CPUs are taken as 200 times slower.
STEP_TOKEN_S_PER_PARAM = {"cuda": 2.3e-14, "cpu": 4.6e-12}
# Wan's VAE (8x, float32) encodes and decodes 81 frames of 720p in roughly 25 s on a GPU.
CODEC_PIXEL_S = {"cuda": 3e-7, "cpu": 3e-5}
# Same figure as LTX: transformer activations, float32 video in and out, VAE tiles.
ACTIVATION_BYTES_PER_TOKEN = {"cuda": 512 * 1024, "cpu": 1024 * 1024}


def create(settings: Settings) -> WanEngine:
    """The `wan` engine from settings: weights `wan_model`, up to `max_seconds` per task."""
    return WanEngine(
        settings.wan_model,
        device=settings.engine_device,
        max_seconds=settings.max_seconds,
        memory_budget_bytes=settings.engine_memory_budget_bytes,
        max_area_px=settings.wan_max_area_px,
    )


def nearest_frames(
    num_out: int, out_fps: float, in_fps: float, num_in: int
) -> npt.NDArray[np.int64]:
    """For each of `num_out` frames at `out_fps`, the index of the input frame (at `in_fps`)
    nearest in time; exact ties go to the earlier frame."""
    positions = np.arange(num_out) * (in_fps / out_fps)
    indices = np.floor(positions + 0.5 - _TIE_EPSILON).astype(np.int64)
    clipped: npt.NDArray[np.int64] = np.clip(indices, 0, num_in - 1)
    return clipped


def model_frame_count(num_frames: int, fps: float) -> int:
    """16 fps frames needed so every one of `num_frames` at `fps` has its nearest model frame."""
    last_position = (num_frames - 1) * MODEL_FPS / fps
    return math.floor(last_position + 0.5 - _TIE_EPSILON) + 1


def working_size(width: int, height: int, max_area_px: int) -> tuple[int, int]:
    """The (width, height) the model runs at: the clip's, or scaled down to `max_area_px`,
    both rounded to multiples of 16 (a few pixels of aspect change at most)."""
    scale = 1.0
    if width * height > max_area_px * AREA_SLACK:
        scale = (max_area_px / (width * height)) ** 0.5

    def rounded(side: int) -> int:
        return max(SIZE_MULTIPLE, round(side * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE)

    return rounded(width), rounded(height)


def resize_frames(frames: Frames, width: int, height: int) -> Frames:
    """Bicubic to `width` x `height`; the frames themselves when already that size."""
    if frames.shape[1:3] == (height, width):
        return frames
    resized = [
        np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC))
        for f in frames
    ]
    return np.stack(resized)


@dataclass(frozen=True)
class WanPlan:
    """How a clip runs: its 16 fps frame count, the windows over them and the working size."""

    model_frames: int  # 16 fps frames that carry the clip, before window padding
    windows: list[Window]
    width: int  # the working size
    height: int


class WanEngine:
    """Wan 2.1 (1.3B or 14B) SDEdit on a GPU (or slowly on a CPU); weights stay loaded."""

    def __init__(
        self,
        model: str = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        *,
        device: str = "cuda",
        max_seconds: float = 10.0,
        num_inference_steps: int = NUM_INFERENCE_STEPS,
        guidance_scale: float = GUIDANCE_SCALE,
        window_frames: int = WINDOW_FRAMES,
        overlap_frames: int = OVERLAP_FRAMES,
        max_area_px: int | None = None,
        memory_budget_bytes: int | None = None,
    ) -> None:
        self.info = EngineInfo(
            name="wan", devices=("cuda", "cpu"), max_seconds=max_seconds, deterministic=True
        )
        self.model, self.num_inference_steps = model, num_inference_steps
        self.guidance_scale, self.negative_prompt = guidance_scale, NEGATIVE_PROMPT
        self.window_frames, self.overlap_frames = window_frames, overlap_frames
        #: None: the checkpoint's native area, known at load (guessed from the name before)
        self.max_area_px = max_area_px
        large = "14B" in model
        self._native_area_px = LARGE_AREA_PX if large else SMALL_AREA_PX
        #: None: whatever the device has (free memory plus what we hold) at generate time
        self.memory_budget_bytes = memory_budget_bytes
        self._device_type = device.split(":")[0]
        self._geometry = TokenGeometry(temporal_ratio=4, spatial_ratio=8, patch=2)
        self._resident_bytes = LARGE_RESIDENT_BYTES if large else SMALL_RESIDENT_BYTES
        self._text_encoder_bytes = DEFAULT_TEXT_ENCODER_BYTES
        self.speed = _default_speed(self._device_type, LARGE_PARAMS if large else SMALL_PARAMS)
        self._pipe: WanPipeline | None = None
        self._device: torch.device | None = None
        self._prompt: tuple[str, dict[str, torch.Tensor]] | None = None

    def load(self, device: str) -> None:
        """Load the weights once (from the hub cache or a local diffusers directory)."""
        import torch
        from diffusers import AutoencoderKLWan, WanVideoToVideoPipeline

        target = resolve_device(device)
        if self._pipe is not None and self._device == target:
            return
        local = Path(self.model).is_dir()  # a directory never reaches for the network
        vae = AutoencoderKLWan.from_pretrained(  # type: ignore[no-untyped-call]
            self.model, subfolder="vae", dtype=torch.float32, local_files_only=local
        )
        pipe: WanPipeline = WanVideoToVideoPipeline.from_pretrained(  # type: ignore[no-untyped-call]
            self.model, vae=vae, dtype=compute_dtype(target), local_files_only=local
        )
        pipe.set_progress_bar_config(disable=True)
        pipe.vae.enable_tiling()  # bounds VAE memory at 1280x768
        pipe.transformer.to(target)
        pipe.vae.to(target)
        self._pipe, self._device, self._device_type, self._prompt = pipe, target, target.type, None
        params = sum(p.numel() for p in pipe.transformer.parameters())
        self._native_area_px = LARGE_AREA_PX if params > LARGE_MODEL_PARAMS else SMALL_AREA_PX
        self._resident_bytes = module_bytes(pipe.transformer, pipe.vae)
        self._text_encoder_bytes = module_bytes(pipe.text_encoder)
        self.speed = _default_speed(target.type, params)

    def estimate(
        self, num_frames: int, height: int, width: int, strength: float, fps: float = 24.0
    ) -> Estimate:
        """Peak device memory and seconds a job needs; usable before `load` (by the name)."""
        steps = self._steps(strength)
        if steps == 0:
            return Estimate(gpu_bytes=0, seconds=0.0)
        plan = self.plan(num_frames, fps, width, height)
        return estimate_windows(
            plan.windows,
            plan.height,
            plan.width,
            steps=steps,
            geometry=self._geometry,
            record=self.speed,
            resident_bytes=self._resident_bytes,
            transient_bytes=self._text_encoder_bytes if self._device_type == "cuda" else 0,
        )

    def check_fits(
        self, num_frames: int, height: int, width: int, strength: float, fps: float = 24.0
    ) -> Estimate:
        """The estimate, or RequestTooLarge when it exceeds the memory budget (for admission)."""
        estimate = self.estimate(num_frames, height, width, strength, fps)
        budget = self.memory_budget_bytes
        if budget is None and self._device is not None:
            budget = available_memory_bytes(self._device)
        if budget is not None and estimate.gpu_bytes > budget:
            raise RequestTooLarge(
                f"This request needs about {estimate.gpu_bytes / 2**30:.1f} GiB of device memory "
                f"and this worker has {budget / 2**30:.1f} GiB; ask for fewer seconds."
            )
        return estimate

    def generate(self, clip: Clip, job: GenerationInput, hooks: RunHooks) -> Clip:
        if not 0.0 <= job.strength <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {job.strength}")
        pipe, device = self._loaded()
        steps = self._steps(job.strength)
        if steps == 0:  # passthrough, see the module docstring
            hooks.check_cancelled()
            hooks.progress(1.0)
            return Clip(frames=clip.frames.copy(), fps=clip.fps)
        if clip.duration_s > self.info.max_seconds + 1.0 / clip.fps:
            raise RequestTooLarge(f"This engine makes at most {self.info.max_seconds:g} s per task")
        self.check_fits(clip.num_frames, clip.height, clip.width, job.strength, clip.fps)
        plan = self.plan(clip.num_frames, clip.fps, clip.width, clip.height)
        _set_flow_shift(pipe, plan.width * plan.height)
        run = _Run(self, pipe, device, plan, job, steps, hooks)
        frames = run_releasing(lambda: run.frames(clip), device)
        return Clip(frames=frames, fps=clip.fps)

    def prompt_embeds(self, text: str) -> dict[str, torch.Tensor]:
        """The prompt's umT5 embeddings as pipeline keyword arguments; the last one is cached."""
        if self._prompt is not None and self._prompt[0] == text:
            return self._prompt[1]
        pipe, device = self._loaded()
        encoder = pipe.text_encoder
        encoder.to(device)
        try:
            embeds, negative = pipe.encode_prompt(
                prompt=text,
                negative_prompt=self.negative_prompt,
                do_classifier_free_guidance=self.guidance_scale > 1.0,
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                device=device,
            )
        finally:
            encoder.to("cpu")  # frees 11 GB of the GPU for denoising; a no-op on a CPU
        kwargs = {"prompt_embeds": embeds}
        if negative is not None:
            kwargs["negative_prompt_embeds"] = negative
        self._prompt = (text, kwargs)
        return kwargs

    def _loaded(self) -> tuple[WanPipeline, torch.device]:
        if self._pipe is None or self._device is None:
            raise RuntimeError("WanEngine.generate called before load()")
        return self._pipe, self._device

    def _steps(self, strength: float) -> int:
        return denoising_steps(self.num_inference_steps, min(strength, MAX_STRENGTH))

    def plan(self, num_frames: int, fps: float, width: int, height: int) -> WanPlan:
        """The windows and working size for a clip of `num_frames` at `fps`, `width` x `height`."""
        model_frames = model_frame_count(num_frames, fps)
        windows = plan_windows(model_frames, self.window_frames, self.overlap_frames, 4)
        area = self.max_area_px or self._native_area_px
        return WanPlan(model_frames, windows, *working_size(width, height, area))


class _Run:
    """One generate call: its windows, run one after another at 16 fps and the working size."""

    def __init__(
        self,
        engine: WanEngine,
        pipe: WanPipeline,
        device: torch.device,
        plan: WanPlan,
        job: GenerationInput,
        steps: int,
        hooks: RunHooks,
    ) -> None:
        self.engine, self.pipe, self.device, self.plan, self.job = engine, pipe, device, plan, job
        self.steps, self.strength = steps, min(job.strength, MAX_STRENGTH)
        area = plan.height * plan.width
        self.tokens = [
            engine._geometry.tokens(w.num_frames, plan.height, plan.width) for w in plan.windows
        ]
        predicted = [
            engine.speed.window_seconds(steps, count, w.num_frames * area)
            for w, count in zip(plan.windows, self.tokens, strict=True)
        ]
        self.progress = StepProgress(hooks, steps, predicted)
        self._first_step_at = 0.0

    def frames(self, clip: Clip) -> Frames:
        """The clip through the model: to 16 fps and the working size, windows, and back."""
        import torch

        plan = self.plan
        to_model = nearest_frames(plan.model_frames, MODEL_FPS, clip.fps, clip.num_frames)
        source = resize_frames(clip.frames[to_model], plan.width, plan.height)
        source = pad_frames(source, plan.windows[-1].stop, plan.height, plan.width)
        out = np.empty_like(source)
        with torch.no_grad():
            embeds = self.engine.prompt_embeds(self.job.text_prompt)
            for window in plan.windows:
                self.progress.start_window(window.index)
                place_window(out, self._window(source, out, window, embeds), window)
                self.progress.window_done()
        back = nearest_frames(clip.num_frames, clip.fps, MODEL_FPS, plan.model_frames)
        return np.ascontiguousarray(resize_frames(out[back], clip.width, clip.height))

    def _window(
        self, source: Frames, out: Frames, window: Window, embeds: dict[str, Any]
    ) -> Frames:
        """One pipeline call: SDEdit from the window's input, its head the previous output."""
        video = source[window.start : window.stop]
        if window.overlap:
            video = video.copy()
            video[: window.overlap] = out[window.start : window.start + window.overlap]
        started, allocated = time.perf_counter(), self._reset_peak()
        result = self.pipe(
            video=[Image.fromarray(frame) for frame in video],
            height=self.plan.height,
            width=self.plan.width,
            strength=self.strength,
            num_inference_steps=self.engine.num_inference_steps,
            guidance_scale=self.engine.guidance_scale,
            generator=seeded_generator(self.device, window_seed(self.job.seed, window.index)),
            output_type="np",
            callback_on_step_end=self._on_step_end,
            max_sequence_length=MAX_SEQUENCE_LENGTH,
            **embeds,
        )
        made: Frames = np.clip(np.rint(result.frames[0] * 255.0), 0, 255).astype(np.uint8)
        self._observe(window, started, allocated)
        return made

    def _on_step_end(
        self, pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if step == 0:  # Wan encodes the video inside the call: time steps from the first end
            self._first_step_at = time.perf_counter()
        return self.progress.on_step_end(pipeline, step, timestep, callback_kwargs)

    def _reset_peak(self) -> int:
        """Bytes allocated before a window, with the peak counter restarted (CUDA only)."""
        if self.device.type != "cuda":
            return 0
        import torch

        torch.cuda.reset_peak_memory_stats(self.device)
        return int(torch.cuda.memory_allocated(self.device))

    def _observe(self, window: Window, started: float, allocated: int) -> None:
        """Feed the window's measured time (and CUDA peak memory) into the engine's record."""
        ended, tokens = time.perf_counter(), self.tokens[window.index]
        last, first = self.progress.last_step_at, self._first_step_at
        # Step 0's own time is not seen: take it as the mean of the others.
        step_s = (last - first) / (self.steps - 1) if self.steps > 1 else 0.0
        denoise_s = step_s * self.steps
        self.engine.speed.observe_window(
            denoise_s=denoise_s,
            steps=self.steps if step_s else 0,
            tokens=tokens,
            codec_s=max(0.0, ended - started - denoise_s),
            pixels=window.num_frames * self.plan.height * self.plan.width,
        )
        if self.device.type == "cuda":
            import torch

            peak = int(torch.cuda.max_memory_allocated(self.device))
            self.engine.speed.observe_peak(peak - allocated, tokens)


def _default_speed(device_type: str, transformer_params: int) -> SpeedRecord:
    return SpeedRecord(
        step_token_s=STEP_TOKEN_S_PER_PARAM.get(device_type, 1e-12) * transformer_params,
        codec_pixel_s=CODEC_PIXEL_S.get(device_type, 1e-6),
        activation_bytes_per_token=ACTIVATION_BYTES_PER_TOKEN.get(device_type, 1024 * 1024),
    )


def _set_flow_shift(pipe: WanPipeline, area_px: int) -> None:
    """3.0 for 480p-sized work, 5.0 for 720p (Wan's recommendation), on flow-shift schedulers."""
    scheduler = pipe.scheduler
    shift = FLOW_SHIFT_720P if area_px > FLOW_SHIFT_720P_FROM_PX else FLOW_SHIFT_480P
    if "flow_shift" in scheduler.config and scheduler.config.flow_shift != shift:
        pipe.scheduler = type(scheduler).from_config(scheduler.config, flow_shift=shift)
