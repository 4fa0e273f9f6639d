"""The measured cost model of diffusers video engines: what a job needs before it runs.

`TokenGeometry` turns frames into transformer tokens; `SpeedRecord` holds an engine's seconds
per step-token and per codec pixel and its activation bytes per token, starting from
documented figures (`default_speed`). `estimate_windows` prices a plan before it runs and
`check_budget` refuses one that cannot fit; while a plan runs, `WindowMeter` weights progress
by each window's predicted time and feeds what each window measured back into the record.
Torch is imported lazily: importing an engine stays cheap.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vidmorph.engines.base import RunHooks
from vidmorph.engines.devices import synchronize
from vidmorph.engines.diffusion import Plan, StepProgress, Window
from vidmorph.errors import RequestTooLarge

if TYPE_CHECKING:
    import torch

MAX_PEAK_SIZES = 64


@dataclass(frozen=True)
class Estimate:
    """What a job needs before it runs: peak device memory (GPU, or host on a CPU) and time."""

    gpu_bytes: int
    seconds: float


@dataclass(frozen=True)
class TokenGeometry:
    """How a model turns frames into transformer tokens: VAE compression, then patches."""

    temporal_ratio: int
    spatial_ratio: int
    patch_t: int = 1
    patch: int = 1

    def tokens(self, num_frames: int, height: int, width: int) -> int:
        latent_frames = (num_frames - 1) // self.temporal_ratio + 1
        rows, cols = height // self.spatial_ratio, width // self.spatial_ratio
        return (latent_frames // self.patch_t) * (rows // self.patch) * (cols // self.patch)


@dataclass
class SpeedRecord:
    """The measured cost model of one engine on one device, starting from documented defaults.

    Time: `step_token_s` per denoising step per token, plus `codec_pixel_s` per pixel of every
    frame a window encodes and decodes; each observation moves them halfway to the new
    measurement (steady, yet it follows a change of GPU clocks). Memory on top of the resident
    weights: the peaks measured per window size (`activation_bytes`), extended by the
    documented `activation_bytes_per_token` past the largest window measured.
    """

    step_token_s: float
    codec_pixel_s: float
    activation_bytes_per_token: float
    #: a window's tokens -> the largest activation peak measured at that size
    peaks: dict[int, int] = field(default_factory=dict)

    def observe_window(
        self, *, denoise_s: float, steps: int, tokens: int, codec_s: float, pixels: int
    ) -> None:
        if steps > 0 and tokens > 0:
            self.step_token_s = 0.5 * (self.step_token_s + denoise_s / (steps * tokens))
        if pixels > 0:
            self.codec_pixel_s = 0.5 * (self.codec_pixel_s + codec_s / pixels)

    def observe_peak(self, activation_bytes: int, tokens: int) -> None:
        if tokens <= 0:
            return
        self.peaks[tokens] = max(activation_bytes, self.peaks.get(tokens, 0))
        if len(self.peaks) > MAX_PEAK_SIZES:  # jobs come in few sizes; forget the smallest
            del self.peaks[min(self.peaks)]

    def activation_bytes(self, tokens: int) -> float:
        """Peak activation memory of a window of `tokens`.

        Memory grows with tokens, so the smallest peak measured at `tokens` or more bounds it.
        Past the largest window measured: that window's peak plus, per extra token, the larger
        of the documented figure and the growth between the two largest sizes measured. A
        small window's peak is mostly fixed overhead (library workspaces, an untiled VAE
        pass), so scaling it up in proportion would refuse jobs that fit. With nothing
        measured: the documented figure.
        """
        peaks = dict(self.peaks)  # one atomic copy: a worker thread may be adding a size
        bounds = [peak for size, peak in peaks.items() if size >= tokens]
        if bounds:
            return float(min(bounds))
        if not peaks:
            return tokens * self.activation_bytes_per_token
        sizes = sorted(peaks)
        per_token = self.activation_bytes_per_token
        if len(sizes) > 1:
            below, largest = sizes[-2], sizes[-1]
            per_token = max(per_token, (peaks[largest] - peaks[below]) / (largest - below))
        return peaks[sizes[-1]] + (tokens - sizes[-1]) * per_token

    def window_seconds(self, steps: int, tokens: int, pixels: int) -> tuple[float, float]:
        """Predicted (denoise, codec) seconds of one window."""
        return steps * tokens * self.step_token_s, pixels * self.codec_pixel_s


@dataclass(frozen=True)
class DeviceCosts:
    """An engine's documented starting figures on one kind of device, before any measurement."""

    step_token_s_per_param: float  # seconds per denoising step-token per transformer parameter
    codec_pixel_s: float
    activation_bytes_per_token: float


def default_speed(
    costs: Mapping[str, DeviceCosts],
    device_type: str,
    transformer_params: int,
    *,
    fallback: DeviceCosts | None = None,
    value_bytes: int | None = None,
) -> SpeedRecord:
    """The starting record for `device_type` ("cuda" or "cpu"): `costs`' figures for it, else
    `fallback`'s (the "cpu" figures when None), time scaled by the transformer's size.
    Activation figures assume bf16 on CUDA and float32 elsewhere; `value_bytes` (the dtype's
    size, `devices.dtype_bytes`) scales them for another dtype."""
    figures = costs.get(device_type, fallback if fallback is not None else costs["cpu"])
    default_bytes = 2 if device_type == "cuda" else 4
    scale = (value_bytes or default_bytes) / default_bytes
    return SpeedRecord(
        step_token_s=figures.step_token_s_per_param * transformer_params,
        codec_pixel_s=figures.codec_pixel_s,
        activation_bytes_per_token=figures.activation_bytes_per_token * scale,
    )


def window_costs(
    windows: Sequence[Window],
    height: int,
    width: int,
    *,
    steps: int,
    geometry: TokenGeometry,
    record: SpeedRecord,
) -> tuple[list[int], list[tuple[float, float]]]:
    """Each window's tokens and predicted (denoise, codec) seconds at `steps` steps."""
    tokens = [geometry.tokens(w.num_frames, height, width) for w in windows]
    seconds = [
        record.window_seconds(steps, count, w.num_frames * height * width)
        for w, count in zip(windows, tokens, strict=True)
    ]
    return tokens, seconds


def estimate_windows(
    windows: Sequence[Window],
    height: int,
    width: int,
    *,
    steps: int,
    geometry: TokenGeometry,
    record: SpeedRecord,
    resident_bytes: int,
    transient_bytes: int,
) -> Estimate:
    """Peak memory and time of running `windows` one after another at `steps` steps each.

    Memory: the resident weights plus the larger of what stays on the device only for a moment
    (the text encoder while it encodes) and the largest window's activations. Windows run one
    at a time, so memory does not add up across them; time does.
    """
    tokens, predicted = window_costs(
        windows, height, width, steps=steps, geometry=geometry, record=record
    )
    activation_bytes = record.activation_bytes(max(tokens, default=0))
    seconds = sum(sum(window_s) for window_s in predicted)
    peak = resident_bytes + max(transient_bytes, int(activation_bytes))
    return Estimate(gpu_bytes=peak, seconds=seconds)


def check_budget(
    estimate: Estimate, budget_bytes: int | None, device: torch.device | None
) -> Estimate:
    """`estimate`, or RequestTooLarge when it needs more memory than `budget_bytes` (None: what
    the loaded `device` has; no check when neither is known, before load)."""
    budget = budget_bytes
    if budget is None and device is not None:
        budget = available_memory_bytes(device)
    if budget is not None and estimate.gpu_bytes > budget:
        raise RequestTooLarge(
            f"This request needs about {estimate.gpu_bytes / 2**30:.1f} GiB of device memory "
            f"and this worker has {budget / 2**30:.1f} GiB; ask for fewer seconds."
        )
    return estimate


def module_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers of `modules`."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    return sum(t.numel() * t.element_size() for t in tensors)


def parameter_count(module: torch.nn.Module) -> int:
    """Parameters of `module` (a transformer's size, which sets its starting speed)."""
    return sum(p.numel() for p in module.parameters())


def available_memory_bytes(device: torch.device) -> int:
    """Memory a job on `device` may use: free CUDA memory plus what this process's allocator
    already holds (our weights included), or the host's physical memory on a CPU."""
    if device.type == "cuda":
        import torch

        free_bytes, _total = torch.cuda.mem_get_info(device)
        return int(free_bytes) + int(torch.cuda.memory_reserved(device))
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class WindowMeter:
    """One run's cost model at work: `progress` is weighted by each window's predicted time, so
    its ratio tracks the clock, and each window's measured time and CUDA peak memory go back
    into the engine's record (`start` before a window's work, `observe` after it)."""

    def __init__(
        self,
        device: torch.device,
        plan: Plan,
        hooks: RunHooks,
        *,
        steps: int,
        geometry: TokenGeometry,
        record: SpeedRecord,
    ) -> None:
        self.device, self.plan, self.record = device, plan, record
        self.tokens, predicted = window_costs(
            plan.windows, plan.height, plan.width, steps=steps, geometry=geometry, record=record
        )
        self.progress = StepProgress(hooks, steps, predicted, sync=lambda: synchronize(device))
        #: time.perf_counter() and CUDA bytes allocated when the current window started
        self.started, self.allocated = 0.0, 0

    def start(self) -> None:
        """Start the clock (after the device's queued work) and, on CUDA, restart the
        peak-memory counter."""
        synchronize(self.device)
        self.started, self.allocated = time.perf_counter(), self._reset_peak()

    def observe(self, window: Window, *, denoise_s: float, steps: int, codec_s: float) -> None:
        """Feed the window's measured times (and CUDA peak memory) into the record."""
        tokens = self.tokens[window.index]
        self.record.observe_window(
            denoise_s=denoise_s,
            steps=steps,
            tokens=tokens,
            codec_s=codec_s,
            pixels=window.num_frames * self.plan.height * self.plan.width,
        )
        if self.device.type == "cuda":
            import torch

            peak = int(torch.cuda.max_memory_allocated(self.device))
            self.record.observe_peak(peak - self.allocated, tokens)

    def _reset_peak(self) -> int:
        """Bytes allocated before a window, with the peak counter restarted (CUDA only)."""
        if self.device.type != "cuda":
            return 0
        import torch

        torch.cuda.reset_peak_memory_stats(self.device)
        return int(torch.cuda.memory_allocated(self.device))
