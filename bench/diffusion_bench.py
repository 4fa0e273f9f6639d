"""Diffusion engines benchmark: seconds per denoising step, engine against a plain diffusers call.

CPU (default): the tiny random LTX and Wan pipelines of tests/engines, to catch regressions in
the engines' own overhead. Each engine's `generate` is timed against a plain call of the same
tiny pipeline with diffusers' default arguments (only the clip's size and frames given), in the
same run; the best of `--repeat` runs counts, after a warm-up.

GPU (`--gpu`): LTX-Video 0.9.8 13B at its real size with RANDOM weights (speed does not depend
on the weights), built from the configs in `diffusion_gpu.py`: 10 s of 1280x768 at 24 fps, strength
0.6, engine against a plain `LTXConditionPipeline` SDEdit call with its defaults (50 steps,
guidance 3, no VAE tiling). Reports GPU seconds per output second and peak GPU memory.

    .venv/bin/python bench/diffusion_bench.py [--repeat 3]
    .venv/bin/python bench/diffusion_bench.py --gpu [--model DIR]   # needs CUDA, ~40 GB disk
    .venv/bin/python bench/diffusion_bench.py --smoke   # the --gpu flow, tiny models, on a CPU
"""

from __future__ import annotations

import argparse
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
    from vidmorph.engines.base import GenerationInput, generate_clip

    job = GenerationInput(PROMPT, STRENGTH, 7, clip.width, clip.height, clip.fps)
    return timed(lambda clock: generate_clip(engine, clip, job, clock), sync)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure; best counts")
    parser.add_argument("--gpu", action="store_true", help="LTX 13B at real size on CUDA")
    parser.add_argument(
        "--smoke", action="store_true", help="the --gpu flow with tiny models on the CPU"
    )
    parser.add_argument("--workdir", type=Path, help="where models are written (default: temp)")
    parser.add_argument(
        "--model", type=Path, help="--gpu/--smoke: build the model here once and keep it"
    )
    args = parser.parse_args()
    if args.gpu or args.smoke:
        from bench.diffusion_gpu import device_rows, print_device_rows, run_gpu

        if args.gpu:
            return run_gpu(args.workdir, args.model)
        print_device_rows(device_rows("cpu", args.workdir, tiny=True, model_dir=args.model))
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
