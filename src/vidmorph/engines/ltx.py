"""The LTX-Video engine: SDEdit video-to-video with diffusers' `LTXConditionPipeline`.

Each window of the input is encoded to normalised VAE latents and passed as `latents` with
`denoise_strength = job.strength` (structure_transformation / 10): diffusers noises them to the
schedule's sigma at that strength and runs only the remaining steps (research/models.md §1.2).
Edge cases, decided here:

- A strength whose step count rounds to 0 (0, and below 1/8 with the 8-step distilled
  schedule) is a passthrough: the input frames come back unchanged and no model runs. Running
  the pipeline would only return the input through a lossy VAE round trip.
- Strength 1 is clamped to `MAX_DENOISE_STRENGTH` (0.99). At exactly 1 diffusers ignores the
  passed latents and makes pure text-to-video from the seed; at 0.99 the first distilled step
  (sigma 1 -> 0.993) is skipped and sampling starts from the input's latents under 99.3%
  noise. Barely any structure survives either way, but every strength then takes the same
  path (SDEdit from the input) and the most transformed output still starts from the clip.

Clips longer than one window run as overlapping windows (`ltx_run.py`). The weights load once
in `load`; the T5 encoder stays on the CPU and visits the GPU only to encode a new prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidmorph.config import Settings
from vidmorph.engines.base import EngineInfo, GenerationInput, RunHooks
from vidmorph.engines.costs import (
    DeviceCosts,
    Estimate,
    TokenGeometry,
    check_budget,
    default_speed,
    estimate_windows,
    module_bytes,
    parameter_count,
)
from vidmorph.engines.devices import compute_dtype, dtype_bytes, resolve_device
from vidmorph.engines.diffusion import Plan, denoising_steps, plan_windows, round_up
from vidmorph.engines.ltx_run import MAX_SEQUENCE_LENGTH, LtxRun, LtxSampling
from vidmorph.engines.pipelines import (
    PipelineTurns,
    PromptCache,
    check_duration,
    check_strength,
    passthrough,
    place_pipeline,
)
from vidmorph.media.clip import ClipStream, Frames

if TYPE_CHECKING:
    import torch
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

DEFAULT_MODEL = "Lightricks/LTX-Video-0.9.8-13B-distilled"
#: the 8-step schedule the LTX-Video 0.9.7/0.9.8 distilled checkpoints were trained for
DISTILLED_TIMESTEPS = (1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03)
#: see the module docstring: at 1 diffusers drops the input's latents
MAX_DENOISE_STRENGTH = 0.99
#: 161 frames (6.7 s at 24 fps) per call: a 10 s clip takes 2 windows, under LTX's 257 ceiling
WINDOW_FRAMES = 161
#: 25 frames (about 1 s, 4 latent frames) of the previous output condition the next window
OVERLAP_FRAMES = 25
# Before load, estimates assume the default 13B checkpoint in bf16: transformer and VAE stay
# on the GPU; T5-XXL's encoder (4.8B parameters) visits it only while a prompt is encoded.
DEFAULT_RESIDENT_BYTES, DEFAULT_TEXT_ENCODER_BYTES = 27 * 10**9, 95 * 10**8
DEFAULT_TRANSFORMER_PARAMS = 13 * 10**9
# The starting cost model; measurements replace it as windows run.
# - Denoising: models.md §3.3 puts the 13B model at 2-3 s per step for 29,760 tokens on an
#   H100 (8.4e-5 s per step-token), 6.5e-15 s per step-token per transformer parameter; a CPU
#   is taken as 200 times slower.
# - Codec: VAE encode + tiled decode, about 3 s for 161 frames at 1280x768 on an H100 (an
#   estimate).
# - Per token: transformer activations (~16 x 4096 bf16 values), the window's video in and out
#   as float32 on the device (8192 pixels x 3 x 4 B, twice) and VAE tiles; float32 on a CPU.
DEVICE_COSTS = {
    "cuda": DeviceCosts(
        step_token_s_per_param=6.5e-15, codec_pixel_s=2e-8, activation_bytes_per_token=512 * 1024
    ),
    "cpu": DeviceCosts(
        step_token_s_per_param=1.3e-12, codec_pixel_s=1e-6, activation_bytes_per_token=1024 * 1024
    ),
}


class LtxEngine:
    """LTX-Video SDEdit on a GPU (or slowly on a CPU); weights stay loaded between calls."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cuda",
        max_seconds: float = 10.0,
        timesteps: tuple[float, ...] = DISTILLED_TIMESTEPS,
        guidance_scale: float = 1.0,
        window_frames: int = WINDOW_FRAMES,
        overlap_frames: int = OVERLAP_FRAMES,
        memory_budget_bytes: int | None = None,
        dtype: str = "auto",
    ) -> None:
        """`device` is where `load` is expected to put the weights, for estimates before it;
        `memory_budget_bytes` None means what the device has when a job arrives; `dtype` is
        the weights' (`devices.compute_dtype`)."""
        self.info = EngineInfo(
            name="ltx", devices=("cuda", "cpu"), max_seconds=max_seconds, deterministic=True
        )
        self.model, self.timesteps, self.guidance_scale = model, timesteps, guidance_scale
        self.window_frames, self.overlap_frames = window_frames, overlap_frames
        self.memory_budget_bytes, self.dtype = memory_budget_bytes, dtype
        self.geometry = TokenGeometry(temporal_ratio=8, spatial_ratio=32)
        self._device_type = "cuda" if device.startswith("cuda") else "cpu"
        # The defaults are bf16 sizes: float32 weights take twice as much.
        size = dtype_bytes(dtype, self._device_type)
        self._resident_bytes = DEFAULT_RESIDENT_BYTES * size // 2
        self._transient_bytes = DEFAULT_TEXT_ENCODER_BYTES * size // 2
        if self._device_type == "cpu":  # the text encoder never leaves host memory
            self._resident_bytes += self._transient_bytes
            self._transient_bytes = 0
        self.speed = default_speed(
            DEVICE_COSTS, self._device_type, DEFAULT_TRANSFORMER_PARAMS, value_bytes=size
        )
        self._pipe: LTXConditionPipeline | None = None
        self._device: torch.device | None = None
        self._prompts = PromptCache()
        self._turns = PipelineTurns()

    def load(self, device: str) -> None:
        """Load the weights (hub id or local diffusers directory) once; later calls keep them."""
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

        target = resolve_device(device)
        if self._pipe is not None and self._device == target:
            return
        local = Path(self.model).is_dir()  # a directory never reaches for the network
        pipe = LTXConditionPipeline.from_pretrained(
            self.model, dtype=compute_dtype(target, self.dtype), local_files_only=local
        )
        pipe.scheduler = unshifted(pipe.scheduler)
        logging.getLogger(pipe.scheduler.__module__).addFilter(_QUIET_GIVEN_TIMESTEPS)
        place_pipeline(pipe, target)
        self._pipe, self._device, self._device_type = pipe, target, target.type
        self._prompts = PromptCache()
        self.geometry = TokenGeometry(
            temporal_ratio=pipe.vae_temporal_compression_ratio,
            spatial_ratio=pipe.vae_spatial_compression_ratio,
            patch_t=pipe.transformer_temporal_patch_size,
            patch=pipe.transformer_spatial_patch_size,
        )
        self._resident_bytes = module_bytes(pipe.transformer, pipe.vae)
        self._transient_bytes = module_bytes(pipe.text_encoder)
        if target.type == "cpu":
            self._resident_bytes, self._transient_bytes = (
                self._resident_bytes + self._transient_bytes,
                0,
            )
        params = parameter_count(pipe.transformer)
        value_bytes = dtype_bytes(self.dtype, target.type)
        self.speed = default_speed(DEVICE_COSTS, target.type, params, value_bytes=value_bytes)

    def estimate(self, num_frames: int, height: int, width: int, strength: float) -> Estimate:
        """Peak device memory and seconds a job needs. Before `load` it assumes the default
        13B checkpoint; after, the loaded weights and the speeds measured so far."""
        steps = self._steps(strength)
        if steps == 0:  # a passthrough uses no device
            return Estimate(gpu_bytes=0, seconds=0.0)
        plan = self._plan(num_frames, height, width)
        return estimate_windows(
            plan.windows,
            plan.height,
            plan.width,
            steps=steps,
            geometry=self.geometry,
            record=self.speed,
            resident_bytes=self._resident_bytes,
            transient_bytes=self._transient_bytes,
        )

    def check_fits(
        self,
        num_frames: int,
        height: int,
        width: int,
        strength: float,
        *,
        budget_bytes: int | None = None,
    ) -> Estimate:
        """The estimate, or RequestTooLarge when it needs more memory than the budget (the
        configured one, else `budget_bytes` a remote worker published, else the loaded
        device's); callable at admission."""
        estimate = self.estimate(num_frames, height, width, strength)
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
        self.check_fits(clip.num_frames, clip.height, clip.width, job.strength)
        plan = self._plan(clip.num_frames, clip.height, clip.width)

        def work() -> Iterator[Frames]:
            sampling = LtxSampling(
                guidance_scale=self.guidance_scale,
                strength=min(job.strength, MAX_DENOISE_STRENGTH),
                steps=steps,
                seed=job.seed,
                embeds=self._prompt_embeds(job.text_prompt),
                timesteps=self.timesteps,
            )
            run = LtxRun(
                pipe, device, plan, sampling, geometry=self.geometry, speed=self.speed, hooks=hooks
            )
            return run.frames(clip)

        return self._turns.stream(work, device, hooks)

    @property
    def pipeline(self) -> LTXConditionPipeline:
        """The loaded diffusers pipeline (RuntimeError before `load`)."""
        return self._loaded()[0]

    def _loaded(self) -> tuple[LTXConditionPipeline, torch.device]:
        if self._pipe is None or self._device is None:
            raise RuntimeError("LtxEngine.generate called before load()")
        return self._pipe, self._device

    def _steps(self, strength: float) -> int:
        return denoising_steps(len(self.timesteps), min(strength, MAX_DENOISE_STRENGTH))

    def _plan(self, num_frames: int, height: int, width: int) -> Plan:
        ratio = self.geometry.spatial_ratio
        windows = plan_windows(
            num_frames, self.window_frames, self.overlap_frames, self.geometry.temporal_ratio
        )
        return Plan(windows, round_up(height, ratio), round_up(width, ratio))

    def _prompt_embeds(self, text: str) -> dict[str, Any]:
        """The prompt's T5 embeddings as pipeline keyword arguments; the last prompt's are kept."""
        pipe, device = self._loaded()

        def encode() -> dict[str, Any]:
            embeds, mask, negative, negative_mask = pipe.encode_prompt(
                prompt=text,
                do_classifier_free_guidance=self.guidance_scale > 1.0,
                max_sequence_length=MAX_SEQUENCE_LENGTH,
                device=device,
            )
            kwargs: dict[str, Any] = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
            if negative is not None:  # only with classifier-free guidance
                kwargs["negative_prompt_embeds"] = negative
                kwargs["negative_prompt_attention_mask"] = negative_mask
            return kwargs

        # T5-XXL visits the GPU only to encode: ~9.5 GB back for denoising afterwards.
        return self._prompts.embeds(text, pipe.text_encoder, device, encode)


class _GivenTimestepsFilter(logging.Filter):
    """Drops diffusers' warning, logged on every call, that given timesteps may not match the
    scheduler's shifting: the engine gives them on purpose to an `unshifted` scheduler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "were passed without `sigmas`" not in record.getMessage()


_QUIET_GIVEN_TIMESTEPS = _GivenTimestepsFilter()


def unshifted(scheduler: Any) -> Any:
    """The flow-matching scheduler with no sigma shifting: the distilled timesteps are the
    sigmas (x1000) the model was distilled for, and diffusers shifts even given timesteps.
    A checkpoint whose scheduler config shifts (a `shift` other than 1, resolution-dependent
    shifting, which would also fail without `mu`, or a `shift_terminal`) gets a plain copy."""
    config = scheduler.config
    shifts = config.get("shift", 1.0) != 1.0 or config.get("shift_terminal")
    if not shifts and not config.get("use_dynamic_shifting"):
        return scheduler
    return type(scheduler).from_config(
        config, shift=1.0, use_dynamic_shifting=False, shift_terminal=None
    )


def create(settings: Settings) -> LtxEngine:
    """The `ltx` engine from settings: weights `ltx_model`, up to `max_seconds` per task."""
    return LtxEngine(
        settings.ltx_model,
        device=settings.engine_device,
        max_seconds=settings.max_seconds,
        window_frames=settings.ltx_window_frames,
        overlap_frames=settings.ltx_overlap_frames,
        memory_budget_bytes=settings.engine_memory_budget_bytes,
        dtype=settings.engine_dtype,
    )
