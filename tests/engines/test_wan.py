"""The Wan engine on a tiny random Wan 2.1 pipeline, loaded through its real loading code.

The tiny model's weights are random, so its pictures are noise: these tests check the engine's
contract (frames, size and fps in = out, 16 fps round trip, windows and seams, seeds, strength
edges, progress, cancellation, refusals), not what the output looks like.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.engines.hooks import RecordingHooks
from tests.engines.tiny_wan import build_tiny_wan
from vidmorph.config import Settings
from vidmorph.engines.base import GenerationInput, generate_clip
from vidmorph.engines.frames import nearest_frames, working_size
from vidmorph.engines.wan import (
    DEFAULT_TEXT_ENCODER_BYTES,
    LARGE_AREA_PX,
    SMALL_AREA_PX,
    SMALL_RESIDENT_BYTES,
    WanEngine,
    create,
    model_frame_count,
)
from vidmorph.errors import RequestTooLarge, TaskCancelled
from vidmorph.media.clip import Clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WIDTH, HEIGHT, FPS = 64, 48, 24.0
PROMPT = "a red monkey dance in the rain"


def moving_clip(seconds: float) -> Clip:
    """Bars sliding 3 px per frame over a gradient, at 24 fps."""
    count = round(seconds * FPS)
    xs, ys = np.meshgrid(np.arange(WIDTH), np.arange(HEIGHT))
    frames = np.empty((count, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(count):
        bars = ((xs + 3 * index) // 8) % 2
        frames[index] = np.stack([bars * 200 + 20, ys * 4, 255 - xs * 3], axis=-1)
    return Clip(frames=frames, fps=FPS)


def job(strength: float = 0.6, seed: int = 7) -> GenerationInput:
    return GenerationInput(PROMPT, strength, seed, WIDTH, HEIGHT, FPS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_wan(tmp_path_factory.mktemp("tiny-wan"))


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> WanEngine:
    """The registry's factory and `load`, with test-sized steps and windows."""
    with pytest.MonkeyPatch.context() as patch:  # module scope runs before the env scrub
        for name in [name for name in os.environ if name.startswith("VIDMORPH_")]:
            patch.delenv(name)
        built = create(Settings(wan_model=str(model_dir), engine_device="cpu"))
    built.num_inference_steps, built.window_frames, built.overlap_frames = 8, 17, 5
    built.load("cpu")
    return built


@pytest.fixture(scope="module")
def one_second(engine: WanEngine) -> tuple[Clip, Clip]:
    clip = moving_clip(1.0)
    return clip, generate_clip(engine, clip, job(), RecordingHooks())


def test_output_has_the_input_frame_count_size_and_fps(one_second: tuple[Clip, Clip]) -> None:
    clip, out = one_second
    assert out.frames.shape == clip.frames.shape
    assert out.fps == FPS
    assert not np.array_equal(out.frames, clip.frames)


def test_same_seed_same_frames_other_seed_other_frames(
    engine: WanEngine, one_second: tuple[Clip, Clip]
) -> None:
    clip, first = one_second
    again = generate_clip(engine, clip, job(), RecordingHooks())
    other = generate_clip(engine, clip, job(seed=8), RecordingHooks())
    assert np.array_equal(again.frames, first.frames)
    assert not np.array_equal(other.frames, first.frames)


def test_bf16_transformer_makes_nearly_the_float32_frames(
    model_dir: Path, engine: WanEngine, one_second: tuple[Clip, Clip]
) -> None:
    """The GPU's dtype path (bf16 transformer and umT5, float32 VAE) run on the CPU: same seed
    same frames, and within a sliver of float32's next to another seed."""
    half = WanEngine(str(model_dir), device="cpu", dtype="bfloat16")
    half.num_inference_steps, half.window_frames, half.overlap_frames = 8, 17, 5
    half.load("cpu")
    pipe = half.pipeline
    assert pipe.transformer.dtype == pipe.text_encoder.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.float32
    clip, full = one_second
    first = generate_clip(half, clip, job(), RecordingHooks()).frames
    assert np.array_equal(first, generate_clip(half, clip, job(), RecordingHooks()).frames)
    other = generate_clip(engine, clip, job(seed=8), RecordingHooks()).frames
    seeds_apart = np.abs(full.frames.astype(int) - other).mean()
    assert np.abs(first.astype(int) - full.frames).mean() < 0.5 * seeds_apart


def test_strength_zero_returns_the_input_without_running(engine: WanEngine) -> None:
    clip, hooks = moving_clip(1.0), RecordingHooks()
    out = generate_clip(engine, clip, job(strength=0.0), hooks)
    assert np.array_equal(out.frames, clip.frames)
    assert out.frames is not clip.frames
    # 24 frames in two batches: a cancel check and a progress report per batch.
    assert hooks.ratios == [0.5, 1.0] and hooks.checks == 2
    # Below one step of the schedule (1/8 here) is a passthrough too.
    assert np.array_equal(
        generate_clip(engine, clip, job(strength=0.1), RecordingHooks()).frames, clip.frames
    )


def test_progress_rises_to_one(engine: WanEngine) -> None:
    hooks = RecordingHooks()
    generate_clip(engine, moving_clip(1.0), job(), hooks)
    assert len(hooks.ratios) > 4
    assert hooks.ratios == sorted(hooks.ratios)
    assert hooks.ratios[-1] == 1.0
    assert 0.0 <= hooks.ratios[0] < 1.0


def test_cancel_mid_denoise_raises_and_leaves_the_engine_usable(
    engine: WanEngine, one_second: tuple[Clip, Clip]
) -> None:
    clip, reference = one_second
    hooks = RecordingHooks(cancel_at=4)  # lock taken, window start, step 1, step 2 cancels
    with pytest.raises(TaskCancelled):
        generate_clip(engine, clip, job(), hooks)
    assert hooks.ratios and hooks.ratios[-1] < 1.0
    assert np.array_equal(
        generate_clip(engine, clip, job(), RecordingHooks()).frames, reference.frames
    )


def test_long_output_runs_three_windows_with_smooth_seams(engine: WanEngine) -> None:
    clip = moving_clip(2.0)
    plan = engine.plan(clip.num_frames, clip.fps, clip.width, clip.height)
    assert len(plan.windows) >= 3
    assert all((w.num_frames - 1) % 4 == 0 for w in plan.windows)
    out = generate_clip(engine, clip, job(), RecordingHooks())
    assert out.frames.shape == clip.frames.shape
    steps = np.abs(np.diff(out.frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    moving = np.median(steps[steps > 0])
    # Output frame i shows model frame round(2i/3); the seams span each window's overlap.
    model_of = nearest_frames(clip.num_frames, FPS, 16.0, plan.model_frames)
    for window in plan.windows[1:]:
        seam = (model_of >= window.start - 1) & (model_of <= window.start + window.overlap)
        seam_steps = steps[seam[1:] & seam[:-1]]
        assert seam_steps.size and seam_steps.max() < 3.0 * moving


def test_large_clips_run_scaled_down_and_come_back_at_full_size(model_dir: Path) -> None:
    small = WanEngine(str(model_dir), device="cpu", num_inference_steps=4, max_area_px=32 * 32)
    small.load("cpu")
    clip = moving_clip(0.5)
    assert small.plan(clip.num_frames, FPS, WIDTH, HEIGHT).width == 32
    out = generate_clip(small, clip, job(), RecordingHooks())
    assert out.frames.shape == clip.frames.shape


def test_too_long_or_too_large_requests_are_refused(model_dir: Path) -> None:
    short = WanEngine(str(model_dir), device="cpu", max_seconds=0.5, memory_budget_bytes=1)
    short.load("cpu")
    with pytest.raises(RequestTooLarge):
        generate_clip(short, moving_clip(1.0), job(), RecordingHooks())
    with pytest.raises(RequestTooLarge, match="GiB"):
        generate_clip(short, moving_clip(0.5), job(), RecordingHooks())
    assert short.estimate(12, HEIGHT, WIDTH, 0.0).seconds == 0.0


def test_24_fps_goes_to_16_and_back_within_one_frame() -> None:
    assert model_frame_count(240, 24.0) == 160
    to_model = nearest_frames(160, 16.0, 24.0, 240)
    back = nearest_frames(240, 24.0, 16.0, 160)
    assert list(to_model[:5]) == [0, 1, 3, 4, 6]
    assert np.abs(to_model[back] - np.arange(240)).max() <= 1
    assert list(nearest_frames(5, 16.0, 16.0, 5)) == [0, 1, 2, 3, 4]


def test_working_size_keeps_native_area_and_multiples_of_16() -> None:
    assert working_size(1280, 768, SMALL_AREA_PX) == (816, 496)
    assert working_size(1280, 768, LARGE_AREA_PX) == (1280, 768)
    assert working_size(64, 48, SMALL_AREA_PX) == (64, 48)
    estimate = WanEngine("Wan-AI/Wan2.1-T2V-14B-Diffusers").estimate(240, 768, 1280, 0.6)
    assert estimate.gpu_bytes > 40 * 2**30


def test_two_worker_threads_share_one_engine_safely(engine: WanEngine) -> None:
    """With VIDMORPH_WORKERS > 1 the threads share the loaded pipeline, whose multistep
    scheduler keeps per-call state: runs take turns, and each gets the frames it gets alone."""
    clip = moving_clip(1.0)
    seeds = (21, 22, 23)
    alone = {
        seed: generate_clip(engine, clip, job(seed=seed), RecordingHooks()).frames for seed in seeds
    }
    together: dict[int, np.ndarray] = {}

    def run(seed: int) -> None:
        together[seed] = generate_clip(engine, clip, job(seed=seed), RecordingHooks()).frames

    threads = [threading.Thread(target=run, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed, frames in alone.items():
        np.testing.assert_array_equal(together[seed], frames)


def test_before_load_estimates_follow_the_dtype_and_count_umt5_on_a_cpu() -> None:
    bf16 = WanEngine(device="cuda").estimate(241, 768, 1280, 0.6)
    fp32 = WanEngine(device="cuda", dtype="float32").estimate(241, 768, 1280, 0.6)
    assert fp32.gpu_bytes == 2 * bf16.gpu_bytes
    # On a CPU (float32) umT5 stays in host memory for the whole run: it is resident there.
    cpu = WanEngine(device="cpu").estimate(241, 768, 1280, 0.6)
    assert cpu.gpu_bytes >= 2 * (SMALL_RESIDENT_BYTES + DEFAULT_TEXT_ENCODER_BYTES)
