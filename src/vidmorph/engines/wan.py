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
the device only to encode a prompt; the last prompt's embeddings are cached. The per-window
run loop is in `wan_run.py`, the frame resampling and resizing in `frames.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmorph.config import Settings
from vidmorph.engines.base import EngineInfo, GenerationInput, RunHooks
from vidmorph.engines.costs import (
    DeviceCosts,
    Estimate,
    SpeedRecord,
    TokenGeometry,
    check_budget,
    default_speed,
    estimate_windows,
    module_bytes,
    parameter_count,
)
from vidmorph.engines.devices import compute_dtype, dtype_bytes, resolve_device
from vidmorph.engines.diffusion import denoising_steps, plan_windows
from vidmorph.engines.frames import frames_covering, working_size
from vidmorph.engines.pipelines import (
    PipelineTurns,
    PromptCache,
    check_duration,
    check_strength,
    passthrough,
    place_pipeline,
)
from vidmorph.engines.wan_run import (
    MAX_SEQUENCE_LENGTH,
    MODEL_FPS,
    WanPipeline,
    WanPlan,
    WanRun,
    WanSampling,
)
from vidmorph.media.clip import ClipStream, Frames

if TYPE_CHECKING:
    import torch

WINDOW_FRAMES = 81
OVERLAP_FRAMES = 17
NUM_INFERENCE_STEPS = 30  # UniPC converges in 30; Wan's 50 buys little for SDEdit
GUIDANCE_SCALE = 5.0
MAX_STRENGTH = 0.99  # see the module docstring
# Wan's recommended negative prompt without "style, works, paintings, images", which would
# fight the restyling prompts this service exists for; "flicker" added for video-to-video.
NEGATIVE_PROMPT = (
    "overexposed, static, blurred details, subtitles, overall gray, worst quality, low quality, "
    "JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn "
    "faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy "
    "background, flicker"
)
# Native areas: 1.3B was trained at 832x480, 14B at 1280x720; 14B has over 5e9 parameters.
# Working sizes are multiples of 16 (VAE 8x, then 2x2 patches), `frames.working_size`'s default.
SMALL_AREA_PX, LARGE_AREA_PX, LARGE_MODEL_PARAMS = 832 * 480, 1280 * 720, 5 * 10**9
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
# Wan's VAE (8x, float32) encodes and decodes 81 frames of 720p in roughly 25 s on a GPU.
# Activations per token: the same figure as LTX (transformer activations, float32 video in
# and out, VAE tiles).
DEVICE_COSTS = {
    "cuda": DeviceCosts(
        step_token_s_per_param=2.3e-14, codec_pixel_s=3e-7, activation_bytes_per_token=512 * 1024
    ),
    "cpu": DeviceCosts(
        step_token_s_per_param=4.6e-12, codec_pixel_s=3e-5, activation_bytes_per_token=1024 * 1024
    ),
}
# Any other device type: `load` refuses it, so only estimates made before load use these.
OTHER_DEVICE_COSTS = DeviceCosts(
    step_token_s_per_param=1e-12, codec_pixel_s=1e-6, activation_bytes_per_token=1024 * 1024
)


def create(settings: Settings) -> WanEngine:
    """The `wan` engine from settings: weights `wan_model`, up to `max_seconds` per task."""
    return WanEngine(
        settings.wan_model,
        device=settings.engine_device,
        max_seconds=settings.max_seconds,
        memory_budget_bytes=settings.engine_memory_budget_bytes,
        max_area_px=settings.wan_max_area_px,
        dtype=settings.engine_dtype,
    )


def model_frame_count(num_frames: int, fps: float) -> int:
    """16 fps frames needed so every one of `num_frames` at `fps` has its nearest model frame."""
    return frames_covering(num_frames, fps, MODEL_FPS)


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
        dtype: str = "auto",
    ) -> None:
        """`dtype` is the transformer's and text encoder's (`devices.compute_dtype`); the
        VAE is always float32."""
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
        self.memory_budget_bytes, self.dtype = memory_budget_bytes, dtype
        self._device_type = device.split(":")[0]
        self._geometry = TokenGeometry(temporal_ratio=4, spatial_ratio=8, patch=2)
        # The defaults are bf16 sizes (the VAE's float32 included): float32 doubles them.
        size = dtype_bytes(dtype, self._device_type)
        self._resident_bytes = (LARGE_RESIDENT_BYTES if large else SMALL_RESIDENT_BYTES) * size // 2
        self._text_encoder_bytes = DEFAULT_TEXT_ENCODER_BYTES * size // 2
        self.speed = self._default_speed(LARGE_PARAMS if large else SMALL_PARAMS)
        self._pipe: WanPipeline | None = None
        self._device: torch.device | None = None
        self._prompts = PromptCache()
        self._turns = PipelineTurns()

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
            self.model, vae=vae, dtype=compute_dtype(target, self.dtype), local_files_only=local
        )
        place_pipeline(pipe, target)
        self._pipe, self._device, self._device_type = pipe, target, target.type
        self._prompts = PromptCache()
        params = parameter_count(pipe.transformer)
        self._native_area_px = LARGE_AREA_PX if params > LARGE_MODEL_PARAMS else SMALL_AREA_PX
        self._resident_bytes = module_bytes(pipe.transformer, pipe.vae)
        self._text_encoder_bytes = module_bytes(pipe.text_encoder)
        self.speed = self._default_speed(params)

    def estimate(
        self, num_frames: int, height: int, width: int, strength: float, fps: float = 24.0
    ) -> Estimate:
        """Peak device memory and seconds a job needs; usable before `load` (by the name)."""
        steps = self._steps(strength)
        if steps == 0:
            return Estimate(gpu_bytes=0, seconds=0.0)
        plan = self.plan(num_frames, fps, width, height)
        on_gpu = self._device_type == "cuda"
        return estimate_windows(
            plan.windows,
            plan.height,
            plan.width,
            steps=steps,
            geometry=self._geometry,
            record=self.speed,
            # On a GPU umT5 visits only to encode; on a CPU it stays in host memory throughout.
            resident_bytes=self._resident_bytes + (0 if on_gpu else self._text_encoder_bytes),
            transient_bytes=self._text_encoder_bytes if on_gpu else 0,
        )

    def check_fits(
        self,
        num_frames: int,
        height: int,
        width: int,
        strength: float,
        fps: float = 24.0,
        *,
        budget_bytes: int | None = None,
    ) -> Estimate:
        """The estimate, or RequestTooLarge when it exceeds the memory budget (for admission):
        the configured one, else `budget_bytes` a remote worker published, else the device's."""
        estimate = self.estimate(num_frames, height, width, strength, fps)
        budget = self.memory_budget_bytes if self.memory_budget_bytes is not None else budget_bytes
        return check_budget(estimate, budget, self._device)

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: RunHooks) -> Iterator[Frames]:
        """Checks now (strength, duration, memory); the frames as the stream is read."""
        check_strength(job.strength)
        pipe, device = self._loaded()
        steps = self._steps(job.strength)
        if steps == 0:  # see the module docstring
            return passthrough(clip, hooks)
        check_duration(clip, self.info.max_seconds)
        self.check_fits(clip.num_frames, clip.height, clip.width, job.strength, clip.fps)
        plan = self.plan(clip.num_frames, clip.fps, clip.width, clip.height)

        def work() -> Iterator[Frames]:
            _set_flow_shift(pipe, plan.width * plan.height)
            sampling = WanSampling(
                guidance_scale=self.guidance_scale,
                strength=min(job.strength, MAX_STRENGTH),
                steps=steps,
                seed=job.seed,
                embeds=self.prompt_embeds(job.text_prompt),
                num_inference_steps=self.num_inference_steps,
            )
            run = WanRun(
                pipe, device, plan, sampling, geometry=self._geometry, speed=self.speed, hooks=hooks
            )
            return run.frames(clip)

        return self._turns.stream(work, device, hooks)

    def prompt_embeds(self, text: str) -> dict[str, torch.Tensor]:
        """The prompt's umT5 embeddings as pipeline keyword arguments; the last one is cached."""
        pipe, device = self._loaded()

        def encode() -> dict[str, Any]:
            embeds, negative = pipe.encode_prompt(
                prompt=text,
                negative_prompt=self.negative_prompt,
                do_classifier_free_guidance=self.guidance_scale > 1.0,
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                device=device,
            )
            kwargs = {"prompt_embeds": embeds}
            if negative is not None:
                kwargs["negative_prompt_embeds"] = negative
            return kwargs

        # umT5-XXL visits the GPU only to encode: 11 GB back for denoising afterwards.
        return self._prompts.embeds(text, pipe.text_encoder, device, encode)

    def plan(self, num_frames: int, fps: float, width: int, height: int) -> WanPlan:
        """The windows and working size for a clip of `num_frames` at `fps`, `width` x `height`."""
        model_frames = model_frame_count(num_frames, fps)
        windows = plan_windows(model_frames, self.window_frames, self.overlap_frames, 4)
        area = self.max_area_px or self._native_area_px
        work_width, work_height = working_size(width, height, area)
        return WanPlan(windows, height=work_height, width=work_width, model_frames=model_frames)

    @property
    def pipeline(self) -> WanPipeline:
        """The loaded diffusers pipeline (RuntimeError before `load`)."""
        return self._loaded()[0]

    def _loaded(self) -> tuple[WanPipeline, torch.device]:
        if self._pipe is None or self._device is None:
            raise RuntimeError("WanEngine.generate called before load()")
        return self._pipe, self._device

    def _steps(self, strength: float) -> int:
        return denoising_steps(self.num_inference_steps, min(strength, MAX_STRENGTH))

    def _default_speed(self, transformer_params: int) -> SpeedRecord:
        return default_speed(
            DEVICE_COSTS,
            self._device_type,
            transformer_params,
            fallback=OTHER_DEVICE_COSTS,
            value_bytes=dtype_bytes(self.dtype, self._device_type),
        )


def _set_flow_shift(pipe: WanPipeline, area_px: int) -> None:
    """3.0 for 480p-sized work, 5.0 for 720p (Wan's recommendation), on flow-shift schedulers."""
    scheduler = pipe.scheduler
    shift = FLOW_SHIFT_720P if area_px > FLOW_SHIFT_720P_FROM_PX else FLOW_SHIFT_480P
    if "flow_shift" in scheduler.config and scheduler.config.flow_shift != shift:
        pipe.scheduler = type(scheduler).from_config(scheduler.config, flow_shift=shift)
