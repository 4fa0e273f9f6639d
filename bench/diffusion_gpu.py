"""The GPU half of `diffusion_bench.py`: LTX-Video 13B at its real size, engine against a plain
diffusers call, on one device.

`device_rows` builds the model on disk with RANDOM weights (speed does not depend on them),
loads the engine as a worker does, runs 10 s of 1280x768 at strength 0.6 cold and warm, then a
plain `LTXConditionPipeline` SDEdit call with its defaults (50 steps, guidance 3, no VAE
tiling), and reports device seconds per output second and peak GPU memory. With `tiny` the same
flow runs the tiny test LTX at 160x96, which is how it is exercised on CPUs (`--smoke`, tests).
Run through `diffusion_bench.py --gpu` or `--smoke`.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench.diffusion_bench import (
    FPS,
    STRENGTH,
    TINY_SIZE,
    Run,
    engine_run,
    moving_frames,
    plain_ltx,
    timed,
)

# LTX-Video 0.9.8 13B in diffusers form, written down because configs cannot be downloaded
# here. Transformer and VAE: the "0.9.7" entries of diffusers' scripts/convert_ltx_to_diffusers.py
# (the 13B 0.9.8 checkpoints share them; 13.04B and 1.25B parameters); text encoder: T5-v1.1-XXL
# (4.76B parameters). Checked on 2026-11-24 against the converter, ComfyUI's LTXV VAE and
# google/t5-v1_1-xxl's config.json (all values agree; parameter counts from meta-device builds);
# the published 0.9.8 config.json files themselves could not be reached from here.
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
    feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, dropout_rate=0.1,
    tie_word_embeddings=False,  # as published; dropout is off in eval mode
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


def ensure_model(path: Path, *, tiny: bool) -> Path:
    """The random-weight model at `path`, built there unless a finished one is there already
    (so a slow build happens once across runs: `--model DIR`)."""
    from tests.engines.tiny_pipelines import build_tiny_ltx

    if not (path / "model_index.json").is_file():
        build_tiny_ltx(path) if tiny else build_ltx_13b(path)
    return path


def device_rows(
    device_name: str, workdir: Path | None, *, tiny: bool, model_dir: Path | None = None
) -> list[DeviceRow]:
    """The GPU benchmark's rows: 10 s at 24 fps, engine (cold, warm) then a plain call of the
    same pipeline, loaded from disk (`model_dir`, kept; else a temporary directory). `tiny`
    runs the same flow with the tiny random LTX at 160x96, which is how it is tested on CPUs;
    otherwise LTX 13B at 1280x768."""
    import torch
    from diffusers import LTXConditionPipeline

    from vidmorph.media.clip import Clip

    device = Device(device_name)
    width, height = TINY_SIZE if tiny else GPU_SIZE
    frames = moving_frames(round(GPU_SECONDS * FPS), width, height)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, torch.no_grad():
        path = ensure_model(model_dir or Path(tmp) / "ltx", tiny=tiny)
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


def run_gpu(workdir: Path | None, model_dir: Path | None = None) -> int:
    import torch

    if not torch.cuda.is_available():
        print(
            f"--gpu needs a CUDA device and torch sees none (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'no'}). Nothing was measured.",
            file=sys.stderr,
        )
        return 2
    rows = device_rows("cuda", workdir, tiny=False, model_dir=model_dir)
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
