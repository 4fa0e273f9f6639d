"""Diffusion engines benchmark: seconds per denoising step, engine against a plain diffusers call.

CPU (default): the tiny random LTX and Wan pipelines of tests/engines, to catch regressions in
the engines' own overhead. Each engine's `generate` is timed against a plain call of the same
tiny pipeline with diffusers' default arguments (only the clip's size and frames given), in the
same run; the best of `--repeat` runs counts, after a warm-up.

GPU (`--gpu`): LTX-Video 0.9.8 13B at its real size with RANDOM weights (speed does not depend
on the weights), built from configs written into this file: 10 s of 1280x768 at 24 fps, strength
0.6, engine against a plain `LTXConditionPipeline` SDEdit call with its defaults (50 steps,
guidance 3, no VAE tiling). Reports GPU seconds per output second and peak GPU memory.

    .venv/bin/python bench/diffusion_bench.py [--repeat 3]
    .venv/bin/python bench/diffusion_bench.py --gpu [--workdir DIR]   # needs CUDA, ~40 GB disk
    .venv/bin/python bench/diffusion_bench.py --smoke   # the --gpu flow, tiny models, on a CPU
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.engines builders

PROMPT = "a red monkey dance in the rain"
STRENGTH = 0.6
FPS = 24.0
TINY_SIZE = (160, 96)  # width, height: divisible by 32 (LTX) and 16 (Wan)
TINY_SECONDS = 1.0


class StepClock:
    """Step-end timestamps, from pipeline callbacks or an engine's progress reports."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def callback(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> Any:
        self.stamps.append(time.perf_counter())
        return kwargs

    def progress(self, ratio: float) -> None:
        self.stamps.append(time.perf_counter())

    def check_cancelled(self) -> None:
        pass

    def step_s(self) -> float:
        """Median gap between step ends: the denoising step, without VAE or window overheads."""
        gaps = np.diff(self.stamps)
        return float(np.median(gaps)) if gaps.size else float("nan")


def moving_frames(count: int, width: int, height: int) -> np.ndarray:
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        bars = ((xs + 4 * index) // 16) % 2
        frames[index] = np.stack([bars * 200 + 20, ys * 255 // height, 255 - xs * 255 // width], -1)
    return frames


def best_of(repeat: int, run: Callable[[], tuple[float, float, int]]) -> tuple[float, float, int]:
    """(wall s, s/step, steps) of the fastest of `repeat` runs, after one warm-up run."""
    run()
    return min((run() for _ in range(repeat)), key=lambda row: row[0])


def timed(call: Callable[[StepClock], None], sync: Callable[[], None]) -> tuple[float, float, int]:
    clock = StepClock()
    sync()
    started = time.perf_counter()
    call(clock)
    sync()
    return time.perf_counter() - started, clock.step_s(), len(clock.stamps)


def engine_run(engine: Any, clip: Any, sync: Callable[[], None]) -> tuple[float, float, int]:
    from vidmorph.engines.base import GenerationInput

    job = GenerationInput(PROMPT, STRENGTH, 7, clip.width, clip.height, clip.fps)
    return timed(lambda clock: engine.generate(clip, job, clock), sync)


def ltx_latents(pipe: Any, frames: np.ndarray) -> Any:
    """Normalised VAE latents of uint8 (F, H, W, 3) frames: LTX's SDEdit input (models.md)."""
    import torch

    device = pipe.vae.device
    video = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255.0
    video = pipe.video_processor.preprocess_video(video, frames.shape[1], frames.shape[2])
    posterior = pipe.vae.encode(video.to(device, pipe.vae.dtype)).latent_dist
    vae = pipe.vae
    return pipe._normalize_latents(
        posterior.mode(), vae.latents_mean, vae.latents_std, vae.config.scaling_factor
    )


def plain_ltx(pipe: Any, frames: np.ndarray) -> Callable[[StepClock], None]:
    """LTXConditionPipeline with its defaults; only the input, size and frame count given."""

    def call(clock: StepClock) -> None:
        pipe(
            latents=ltx_latents(pipe, frames),
            denoise_strength=STRENGTH,
            prompt=PROMPT,
            height=frames.shape[1],
            width=frames.shape[2],
            num_frames=len(frames),
            callback_on_step_end=clock.callback,
            output_type="np",
        )

    return call


def plain_wan(pipe: Any, frames: np.ndarray) -> Callable[[StepClock], None]:
    """WanVideoToVideoPipeline with its defaults (50 steps, strength 0.8, guidance 5)."""
    from PIL import Image

    video = [Image.fromarray(frame) for frame in frames]

    def call(clock: StepClock) -> None:
        height, width = frames.shape[1:3]
        pipe(video=video, prompt=PROMPT, height=height, width=width,
             callback_on_step_end=clock.callback, output_type="np")  # fmt: skip

    return call


def cpu_rows(repeat: int, workdir: Path) -> list[tuple[str, tuple[float, float, int]]]:
    import torch
    from tests.engines.tiny_pipelines import build_tiny_ltx
    from tests.engines.tiny_wan import build_tiny_wan

    width, height = TINY_SIZE
    clip_frames = moving_frames(round(TINY_SECONDS * FPS), width, height)
    runs = {
        **_tiny_ltx_runs(build_tiny_ltx(workdir / "ltx"), clip_frames),
        **_tiny_wan_runs(build_tiny_wan(workdir / "wan"), clip_frames),
    }
    with torch.no_grad():
        return [(name, best_of(repeat, run)) for name, run in runs.items()]


Run = Callable[[], tuple[float, float, int]]


def _tiny_ltx_runs(model_dir: Path, frames: np.ndarray) -> dict[str, Run]:
    from diffusers import LTXConditionPipeline

    from vidmorph.config import Settings
    from vidmorph.engines import ltx
    from vidmorph.media.clip import Clip

    pipe = LTXConditionPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    plain = plain_ltx(pipe, np.concatenate([frames, frames[-1:]]))  # 8k+1 = 25 frames
    engine: Any = ltx.create(Settings(ltx_model=str(model_dir), engine_device="cpu"))
    engine.load("cpu")
    return {
        "tiny LTX, plain call (defaults)": lambda: timed(plain, _no_sync),
        "tiny LTX, LtxEngine.generate": lambda: engine_run(engine, Clip(frames, FPS), _no_sync),
    }


def _tiny_wan_runs(model_dir: Path, frames: np.ndarray) -> dict[str, Run]:
    from diffusers import WanVideoToVideoPipeline

    from vidmorph.config import Settings
    from vidmorph.engines import wan
    from vidmorph.engines.frames import nearest_frames
    from vidmorph.engines.wan_run import MODEL_FPS
    from vidmorph.media.clip import Clip

    pipe = WanVideoToVideoPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    # The engine's 16 fps frames of the same clip, padded to 4k+1 as it pads them.
    to_model = nearest_frames(17, MODEL_FPS, FPS, len(frames))
    plain = plain_wan(pipe, frames[to_model])
    engine = wan.create(Settings(wan_model=str(model_dir), engine_device="cpu"))
    engine.load("cpu")
    return {
        "tiny Wan, plain call (defaults)": lambda: timed(plain, _no_sync),
        "tiny Wan, WanEngine.generate": lambda: engine_run(engine, Clip(frames, FPS), _no_sync),
    }


def _no_sync() -> None:
    pass


def print_rows(title: str, rows: list[tuple[str, tuple[float, float, int]]], note: str) -> None:
    print(f"### {title}\nMachine: {platform.platform()}, {platform.processor() or 'cpu'}\n")
    print(f"{note}\n")
    print("| call | wall s | step reports | median s/step |")
    print("|---|---:|---:|---:|")
    for name, (wall_s, step_s, steps) in rows:
        print(f"| {name} | {wall_s:.3f} | {steps} | {step_s:.4f} |")


# LTX-Video 0.9.8 13B in diffusers form, written down because configs cannot be downloaded
# here. Transformer and VAE: the "0.9.7" entries of diffusers' scripts/convert_ltx_to_diffusers.py
# (the 13B 0.9.8 checkpoints share them; 13.04B and 1.25B parameters); text encoder: T5-v1.1-XXL
# (4.76B parameters). CHECK them against the published config.json files when weights are at hand.
LTX_13B_TRANSFORMER: dict[str, Any] = dict(
    in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
    attention_head_dim=128, cross_attention_dim=4096, num_layers=48, caption_channels=4096,
    activation_fn="gelu-approximate", qk_norm="rms_norm_across_heads",
    norm_elementwise_affine=False, norm_eps=1e-6, attention_bias=True, attention_out_bias=True,
)  # fmt: skip
LTX_097_VAE: dict[str, Any] = dict(
    in_channels=3, out_channels=3, latent_channels=128,
    block_out_channels=(128, 256, 512, 1024, 2048),
    down_block_types=("LTXVideo095DownBlock3D",) * 4,
    decoder_block_out_channels=(256, 512, 1024), layers_per_block=(4, 6, 6, 2, 2),
    decoder_layers_per_block=(5, 5, 5, 5), spatio_temporal_scaling=(True,) * 4,
    decoder_spatio_temporal_scaling=(True,) * 3, decoder_inject_noise=(False,) * 4,
    downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    upsample_residual=(True,) * 3, upsample_factor=(2,) * 3, timestep_conditioning=True,
    patch_size=4, patch_size_t=1, resnet_norm_eps=1e-6, scaling_factor=1.0, encoder_causal=True,
    decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8,
)  # fmt: skip
T5_XXL: dict[str, Any] = dict(
    vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.0,
    is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False,
)  # fmt: skip
GPU_SIZE, GPU_SECONDS = (1280, 768), 10.0


def build_ltx_13b(path: Path) -> Path:
    """Random-weight LTX 13B pipeline (bf16) written to `path`; built on the GPU (~36 GB)."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )  # fmt: skip
    from tests.engines.tiny_pipelines import make_tokenizer
    from transformers import T5Config, T5EncoderModel

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # float32 first would need 52 GB for 13B
    try:
        with torch.device("cuda"):
            pipe = LTXConditionPipeline(
                transformer=LTXVideoTransformer3DModel(**LTX_13B_TRANSFORMER),
                vae=AutoencoderKLLTXVideo(**LTX_097_VAE),
                # As the converter writes 0.9.7; the engine passes its own timesteps anyway.
                scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False),
                text_encoder=T5EncoderModel(T5Config(**T5_XXL)).eval(),
                tokenizer=make_tokenizer(model_max_length=128),
            )
    finally:
        torch.set_default_dtype(previous)
    pipe.save_pretrained(str(path))
    del pipe
    torch.cuda.empty_cache()
    return path


class Device:
    """What the run needs to know of its device: syncing clocks and reading peak memory."""

    def __init__(self, name: str) -> None:
        import torch

        self.name, self.cuda = name, name.startswith("cuda")
        self.dtype = torch.bfloat16 if self.cuda else torch.float32

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def measure(self, run: Run) -> tuple[float, float, int, float]:
        """The run's (wall s, s/step, steps) and its peak device memory in GiB (NaN on a
        CPU); running out of GPU memory gives NaNs and -1 steps instead of an error."""
        import torch

        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            wall_s, step_s, steps = run()
        except torch.cuda.OutOfMemoryError:
            wall_s, step_s, steps = float("nan"), float("nan"), -1
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else float("nan")
        return wall_s, step_s, steps, peak


DeviceRow = tuple[str, tuple[float, float, int, float]]


def _engine_rows(path: Path, clip: Any, device: Device) -> list[DeviceRow]:
    """The engine loaded from `path` as a worker loads it, run twice: cold, then warm."""
    from vidmorph.config import Settings
    from vidmorph.engines import ltx

    engine: Any = ltx.create(Settings(ltx_model=str(path), engine_device=device.name))
    started = time.perf_counter()
    engine.load(device.name)
    print(f"LtxEngine.load: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return [
        (
            f"LtxEngine.generate ({label})",
            device.measure(lambda: engine_run(engine, clip, device.sync)),
        )
        for label in ("cold", "warm")
    ]  # the engine dies with this frame: the plain pipeline gets the memory


def device_rows(device_name: str, workdir: Path | None, *, tiny: bool) -> list[DeviceRow]:
    """The GPU benchmark's rows: 10 s at 24 fps, engine (cold, warm) then a plain call of the
    same pipeline, loaded from disk. `tiny` runs the same flow with the tiny random LTX at
    160x96, which is how it is tested on CPUs; otherwise LTX 13B at 1280x768."""
    import torch
    from diffusers import LTXConditionPipeline
    from tests.engines.tiny_pipelines import build_tiny_ltx

    from vidmorph.media.clip import Clip

    device = Device(device_name)
    width, height = TINY_SIZE if tiny else GPU_SIZE
    frames = moving_frames(round(GPU_SECONDS * FPS), width, height)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, torch.no_grad():
        path = Path(tmp) / "ltx"
        build_tiny_ltx(path) if tiny else build_ltx_13b(path)
        rows = _engine_rows(path, Clip(frames, FPS), device)
        gc.collect()
        pipe = LTXConditionPipeline.from_pretrained(str(path), dtype=device.dtype)
        pipe.to(device.name)
        pipe.set_progress_bar_config(disable=True)
        plain = plain_ltx(pipe, np.concatenate([frames, frames[-1:]]))  # 8k+1 = 241 frames
        rows.append(
            (
                "plain LTXConditionPipeline call (defaults)",
                device.measure(lambda: timed(plain, device.sync)),
            )
        )
    return rows


def run_gpu(workdir: Path | None) -> int:
    import torch

    if not torch.cuda.is_available():
        print(
            f"--gpu needs a CUDA device and torch sees none (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'no'}). Nothing was measured.",
            file=sys.stderr,
        )
        return 2
    rows = device_rows("cuda", workdir, tiny=False)
    width, height = GPU_SIZE
    print(f"### LTX-Video 13B (random weights), {width}x{height}, {GPU_SECONDS:g} s at {FPS:g} fps")
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}; strength {STRENGTH}\n")
    print_device_rows(rows)
    return 0


def print_device_rows(rows: list[DeviceRow]) -> None:
    """The rows, with the engine's warm run against the plain call as the ratio to report."""
    print("| call | wall s | device s per output s | median s/step | steps | peak GiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (wall_s, step_s, steps, peak_gib) in rows:
        per_s = wall_s / GPU_SECONDS
        print(f"| {name} | {wall_s:.1f} | {per_s:.2f} | {step_s:.2f} | {steps} | {peak_gib:.1f} |")
    warm, plain = rows[1][1][0], rows[2][1][0]
    print(f"\nplain call / engine (warm) wall time: {plain / warm:.2f}x (aim >= 2x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure; best counts")
    parser.add_argument("--gpu", action="store_true", help="LTX 13B at real size on CUDA")
    parser.add_argument(
        "--smoke", action="store_true", help="the --gpu flow with tiny models on the CPU"
    )
    parser.add_argument("--workdir", type=Path, help="where models are written (default: temp)")
    args = parser.parse_args()
    if args.gpu:
        return run_gpu(args.workdir)
    if args.smoke:
        print_device_rows(device_rows("cpu", args.workdir, tiny=True))
        return 0
    with tempfile.TemporaryDirectory(dir=args.workdir) as workdir:
        rows = cpu_rows(args.repeat, Path(workdir))
    note = (
        f"{TINY_SIZE[0]}x{TINY_SIZE[1]}, {TINY_SECONDS:g} s at {FPS:g} fps, strength {STRENGTH}. "
        "Plain calls use diffusers' defaults (LTX: 50 steps, guidance 3 with CFG batched; Wan: "
        "50 steps at strength 0.8, guidance 5 as two passes); the engines their own (LTX: 8 "
        "distilled steps, no CFG; Wan: 30 steps). Step reports include window/VAE progress "
        "reports for engines; the median gap is the denoising step."
    )
    print_rows("Tiny diffusion pipelines on the CPU (random weights)", rows, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
