"""The LTX engine on a tiny random LTX pipeline loaded from disk, on the CPU.

The pipeline (`tiny_pipelines.build_tiny_ltx`) has LTX's real 32x/8x VAE compression, so frame
sizes, 8k+1 frame counts and window arithmetic are the production ones; frames are 160x96 and
windows 25 frames with 9 shared, so three windows cover 57 frames.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.engines.hooks import RecordingHooks
from tests.engines.tiny_pipelines import build_tiny_ltx
from vidmorph.config import Settings
from vidmorph.engines.base import GenerationInput, generate_clip
from vidmorph.engines.diffusion import plan_windows
from vidmorph.engines.ltx import DISTILLED_TIMESTEPS, LtxEngine, create
from vidmorph.errors import RequestTooLarge, TaskCancelled
from vidmorph.media.clip import Clip

HEIGHT, WIDTH, FPS = 96, 160, 24.0
WINDOW, OVERLAP = 25, 9
#: 4 of the 8 distilled steps run at strength 0.6
STEPS_AT_06 = 4


def panning(num_frames: int, height: int = HEIGHT, width: int = WIDTH) -> Clip:
    """A smoothly panning colour gradient: consecutive frames differ a little, evenly."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = [
        np.stack([40 + xs + 2 * t, 60 + ys, 200 - xs // 2 - t], axis=-1) for t in range(num_frames)
    ]
    return Clip(np.clip(np.stack(frames), 0, 255).astype(np.uint8), FPS)


def job(strength: float = 0.6, seed: int = 7, prompt: str = "a red dog") -> GenerationInput:
    return GenerationInput(prompt, strength, seed, WIDTH, HEIGHT, FPS)


def frame_steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames."""
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("tiny-ltx"))


@pytest.fixture(scope="module")
def engine(tiny_ltx: Path) -> LtxEngine:
    engine = LtxEngine(str(tiny_ltx), device="cpu", window_frames=WINDOW, overlap_frames=OVERLAP)
    engine.load("cpu")
    return engine


@pytest.fixture(scope="module")
def long_run(engine: LtxEngine) -> tuple[Clip, Clip, RecordingHooks]:
    """Three windows over 57 frames, generated once for the tests that look at it."""
    clip, hooks = panning(57), RecordingHooks()
    return clip, generate_clip(engine, clip, job(), hooks), hooks


def test_the_factory_loads_the_weights_named_in_settings(
    tiny_ltx: Path, make_settings: Callable[..., Settings]
) -> None:
    engine = create(make_settings(ltx_model=str(tiny_ltx), max_seconds=12))
    assert engine.info.name == "ltx" and engine.info.max_seconds == 12
    engine.load("cpu")
    out = generate_clip(engine, panning(9), job(), RecordingHooks())
    assert out.frames.shape == (9, HEIGHT, WIDTH, 3)


@pytest.mark.parametrize("num_frames", [1, 19])
def test_output_keeps_the_input_frame_count_size_and_fps(
    engine: LtxEngine, num_frames: int
) -> None:
    # Neither 8k+1 frames nor multiples of 32 pixels: padded for the model, cropped back.
    clip = panning(num_frames, height=90, width=150)
    out = generate_clip(engine, clip, job(), RecordingHooks())
    assert out.frames.shape == (num_frames, 90, 150, 3) and out.fps == FPS
    assert out.frames.dtype == np.uint8 and out.frames.flags.c_contiguous


def test_the_same_seed_gives_the_same_frames_and_another_seed_others(engine: LtxEngine) -> None:
    clip = panning(9)
    first = generate_clip(engine, clip, job(seed=11), RecordingHooks()).frames
    again = generate_clip(engine, clip, job(seed=11), RecordingHooks()).frames
    other = generate_clip(engine, clip, job(seed=12), RecordingHooks()).frames
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 1.0


def test_a_long_output_is_deterministic_across_windows(
    engine: LtxEngine, long_run: tuple[Clip, Clip, RecordingHooks]
) -> None:
    clip, out, _ = long_run
    np.testing.assert_array_equal(
        generate_clip(engine, clip, job(), RecordingHooks()).frames, out.frames
    )


@pytest.mark.parametrize("strength", [0.0, 0.1])
def test_a_strength_that_leaves_no_step_returns_the_input(
    engine: LtxEngine, strength: float
) -> None:
    clip, hooks = panning(9), RecordingHooks()
    out = generate_clip(engine, clip, job(strength=strength), hooks)
    np.testing.assert_array_equal(out.frames, clip.frames)
    assert out.frames is not clip.frames and hooks.ratios == [1.0]


def test_full_strength_is_clamped_to_skip_the_first_step_and_still_transforms(
    engine: LtxEngine,
) -> None:
    clip, hooks = panning(9), RecordingHooks()
    out = generate_clip(engine, clip, job(strength=1.0), hooks)
    assert len(hooks.ratios) == 7 + 1  # seven of the eight distilled steps, then the decode
    assert np.abs(out.frames.astype(int) - clip.frames).mean() > 5.0


def test_a_long_output_has_three_windows_and_keeps_the_clip_shape(
    long_run: tuple[Clip, Clip, RecordingHooks],
) -> None:
    clip, out, _ = long_run
    assert len(plan_windows(clip.num_frames, WINDOW, OVERLAP, 8)) == 3
    assert out.frames.shape == clip.frames.shape and out.fps == clip.fps


def test_progress_rises_with_every_step_of_every_window_and_ends_at_one(
    long_run: tuple[Clip, Clip, RecordingHooks],
) -> None:
    _, _, hooks = long_run
    assert len(hooks.ratios) == 3 * (STEPS_AT_06 + 1)
    assert all(b > a for a, b in zip(hooks.ratios, hooks.ratios[1:], strict=False))
    assert hooks.ratios[-1] == 1.0 and max(hooks.ratios[:-1]) < 1.0
    assert hooks.checks >= len(hooks.ratios)  # a cancel check at every step


def test_no_seam_jumps_more_than_frames_change_inside_windows(
    long_run: tuple[Clip, Clip, RecordingHooks],
) -> None:
    clip, out, _ = long_run
    steps = frame_steps(out.frames)  # steps[i]: frame i to frame i + 1
    windows = plan_windows(clip.num_frames, WINDOW, OVERLAP, 8)
    seam = set()
    for window in windows[1:]:  # entering, crossing and leaving each cross-fade
        seam |= set(range(window.start - 1, window.start + window.overlap + 1))
    inside = [step for index, step in enumerate(steps) if index not in seam]
    typical = float(np.median(inside))
    assert typical > 1.0  # the output does move, so the comparison means something
    assert max(steps[sorted(seam)]) <= 2.0 * typical


def test_a_cancel_in_the_middle_of_denoising_stops_the_run(engine: LtxEngine) -> None:
    # Checks: the run lock taken (1), window 0 starts (2), then one per step: the 5th is the
    # third step's.
    hooks = RecordingHooks(cancel_at=5)
    with pytest.raises(TaskCancelled):
        generate_clip(engine, panning(41), job(), hooks)
    assert len(hooks.ratios) == 2 and 0.0 < hooks.ratios[-1] < 1.0
    # The engine stays loaded and usable.
    assert generate_clip(engine, panning(9), job(), RecordingHooks()).num_frames == 9


def test_a_job_over_the_memory_budget_is_refused_before_it_runs(
    engine: LtxEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    needed = engine.estimate(57, HEIGHT, WIDTH, 0.6).gpu_bytes
    monkeypatch.setattr(engine, "memory_budget_bytes", needed - 1)
    with pytest.raises(RequestTooLarge):
        engine.check_fits(57, HEIGHT, WIDTH, 0.6)
    hooks = RecordingHooks()
    with pytest.raises(RequestTooLarge):
        generate_clip(engine, panning(57), job(), hooks)
    assert hooks.ratios == []
    assert engine.check_fits(9, HEIGHT, WIDTH, 0.6).gpu_bytes < needed  # a shorter one fits


def test_estimates_grow_with_the_job_and_use_the_measured_speed(
    engine: LtxEngine, long_run: tuple[Clip, Clip, RecordingHooks]
) -> None:
    short, long = engine.estimate(9, HEIGHT, WIDTH, 0.6), engine.estimate(57, HEIGHT, WIDTH, 0.6)
    assert 0 < short.seconds < long.seconds and short.gpu_bytes <= long.gpu_bytes
    assert engine.estimate(57, HEIGHT, WIDTH, 0.9).seconds > long.seconds  # more steps
    assert engine.estimate(57, HEIGHT, WIDTH, 0.0).seconds == 0.0
    unmeasured = LtxEngine(device="cpu").speed
    assert engine.speed.step_token_s != unmeasured.step_token_s


def test_before_load_estimates_assume_the_13b_model_on_a_gpu() -> None:
    estimate = LtxEngine(device="cuda").estimate(241, 768, 1280, 0.3)
    assert 27 * 10**9 < estimate.gpu_bytes < 60 * 10**9
    assert 5.0 < estimate.seconds < 120.0
    # float32 weights and activations take twice bf16's memory; float16 the same as bf16.
    full = LtxEngine(device="cuda", dtype="float32").estimate(241, 768, 1280, 0.3)
    assert full.gpu_bytes == 2 * estimate.gpu_bytes
    half = LtxEngine(device="cuda", dtype="float16").estimate(241, 768, 1280, 0.3)
    assert half.gpu_bytes == estimate.gpu_bytes


def test_bf16_weights_make_nearly_the_float32_frames(
    tiny_ltx: Path, engine: LtxEngine, make_settings: Callable[..., Settings]
) -> None:
    """The GPU's dtype path (bf16 transformer, VAE and T5, float32 frames in and out) run on
    the CPU: same seed same frames, and within a sliver of float32's next to another seed."""
    half = create(make_settings(ltx_model=str(tiny_ltx), engine_dtype="bfloat16"))
    half.window_frames, half.overlap_frames = WINDOW, OVERLAP
    half.load("cpu")
    pipe = half.pipeline
    assert {pipe.transformer.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.bfloat16}
    clip = panning(41)  # two windows: the conditioning tail goes through the bf16 VAE too
    first = generate_clip(half, clip, job(), RecordingHooks()).frames
    np.testing.assert_array_equal(first, generate_clip(half, clip, job(), RecordingHooks()).frames)
    full, other = (
        generate_clip(engine, clip, job(seed=s), RecordingHooks()).frames for s in (7, 8)
    )
    seeds_apart = np.abs(full.astype(int) - other).mean()
    assert np.abs(first.astype(int) - full).mean() < 0.1 * seeds_apart


def test_a_shifting_scheduler_config_still_runs_the_distilled_sigmas(tmp_path: Path) -> None:
    """diffusers shifts even given timesteps, and resolution-dependent shifting fails without
    `mu`: the engine runs LTX's distilled schedule exactly whatever the checkpoint's config."""
    shifting = {"use_dynamic_shifting": True, "shift": 3.0, "shift_terminal": 0.1}
    model = build_tiny_ltx(tmp_path, scheduler=shifting)
    shifted = LtxEngine(str(model), device="cpu")
    shifted.load("cpu")
    out = generate_clip(shifted, panning(9), job(strength=1.0), RecordingHooks())
    assert out.num_frames == 9
    sigmas = shifted.pipeline.scheduler.sigmas.numpy()
    np.testing.assert_allclose(sigmas[:-1], np.array(DISTILLED_TIMESTEPS) / 1000, rtol=1e-6)


def test_a_vae_that_injects_decoder_noise_still_repeats_for_a_seed(tmp_path: Path) -> None:
    """LTX 0.9.1-style VAEs add noise while decoding, drawn from torch's global generator:
    each window runs with it seeded from the job (and restored after), so seeds still repeat."""
    noisy = {"decoder_inject_noise": (True,) * 5, "timestep_conditioning": True}
    engine = LtxEngine(str(build_tiny_ltx(tmp_path, vae=noisy)), device="cpu")
    engine.load("cpu")
    state = torch.get_rng_state()
    first = generate_clip(engine, panning(9), job(), RecordingHooks()).frames
    assert torch.equal(torch.get_rng_state(), state)  # the caller's randomness is untouched
    again, other = (
        generate_clip(engine, panning(9), job(seed=s), RecordingHooks()) for s in (7, 8)
    )
    np.testing.assert_array_equal(first, again.frames)
    assert not np.array_equal(first, other.frames)


def test_a_model_that_outputs_nan_fails_the_run_clearly(tiny_ltx: Path) -> None:
    broken = LtxEngine(str(tiny_ltx), device="cpu")
    broken.load("cpu")
    with torch.no_grad():
        broken.pipeline.transformer.proj_out.weight.fill_(float("nan"))
    with pytest.raises(RuntimeError, match="non-finite"):
        generate_clip(broken, panning(9), job(), RecordingHooks())


def test_a_clip_longer_than_max_seconds_is_refused(engine: LtxEngine) -> None:
    too_long = Clip(np.zeros((12 * 24, 32, 32, 3), dtype=np.uint8), FPS)  # 12 s
    with pytest.raises(RequestTooLarge):
        generate_clip(engine, too_long, job(), RecordingHooks())


def test_generate_needs_load_first(tiny_ltx: Path) -> None:
    with pytest.raises(RuntimeError, match="load"):
        generate_clip(LtxEngine(str(tiny_ltx), device="cpu"), panning(9), job(), RecordingHooks())


def test_importing_the_engine_loads_neither_torch_nor_diffusers() -> None:
    code = (
        "import sys, vidmorph.engines.ltx; "
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
