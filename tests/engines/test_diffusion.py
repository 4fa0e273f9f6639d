"""The model-agnostic diffusion machinery: windows, padding, seams, progress, seeds, costs."""

from __future__ import annotations

import itertools
import traceback
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXConditionPipeline

from tests.engines.hooks import RecordingHooks
from vidmorph.engines.costs import SpeedRecord, TokenGeometry, estimate_windows, module_bytes
from vidmorph.engines.devices import (
    check_finite,
    compute_dtype,
    resolve_device,
    seeded_generator,
    stream_releasing,
    window_seed,
)
from vidmorph.engines.diffusion import (
    Plan,
    StepProgress,
    Window,
    denoising_steps,
    frames_to_multiple,
    pad_frames,
    place_window,
    plan_windows,
    stream_windows,
)
from vidmorph.errors import TaskCancelled


@pytest.mark.parametrize(
    ("num_frames", "multiple", "expected"),
    [(1, 8, 1), (2, 8, 9), (9, 8, 9), (10, 8, 17), (240, 8, 241), (241, 8, 241), (80, 4, 81)],
)
def test_frames_round_up_to_the_vae_multiple_plus_one(
    num_frames: int, multiple: int, expected: int
) -> None:
    assert frames_to_multiple(num_frames, multiple) == expected


def test_a_short_clip_is_one_padded_window() -> None:
    assert plan_windows(20, window=161, overlap=25, frame_multiple=8) == [Window(0, 0, 25, 0)]


def test_ten_seconds_at_24_fps_take_two_default_ltx_windows() -> None:
    windows = plan_windows(241, window=161, overlap=25, frame_multiple=8)
    assert windows == [Window(0, 0, 161, 0), Window(1, 136, 105, 25)]


@pytest.mark.parametrize(
    ("window", "overlap", "multiple"), [(25, 9, 8), (33, 9, 8), (161, 25, 8), (21, 5, 4)]
)
def test_windows_cover_every_frame_with_valid_lengths_and_overlaps(
    window: int, overlap: int, multiple: int
) -> None:
    for num_frames in [*range(1, 120), 241, 400, 1441]:
        windows = plan_windows(num_frames, window, overlap, multiple)
        assert windows[0].start == 0 and windows[0].overlap == 0
        assert windows[-1].stop >= num_frames
        assert windows[-1].stop - num_frames < multiple  # padding never fills a latent frame
        for index, current in enumerate(windows):
            assert current.index == index
            assert (current.num_frames - 1) % multiple == 0 and current.num_frames <= window
            assert current.start % multiple == 0  # windows start on latent-frame boundaries
        for previous, current in itertools.pairwise(windows):
            assert current.overlap == overlap
            assert current.start == previous.stop - overlap
            assert current.stop >= previous.stop + multiple  # every window adds new frames
            # the tail the next window is conditioned on is clear of this window's cross-fade
            assert previous.start + previous.overlap <= previous.stop - overlap


@pytest.mark.parametrize(("window", "overlap"), [(24, 9), (25, 8), (25, 17), (0, 1), (9, 0)])
def test_invalid_window_shapes_are_refused(window: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        plan_windows(100, window, overlap, 8)


def test_padding_repeats_the_last_frame_and_the_edges() -> None:
    frames = np.arange(2 * 3 * 5 * 3, dtype=np.uint8).reshape(2, 3, 5, 3)
    padded = pad_frames(frames, 4, 4, 7)
    assert padded.shape == (4, 4, 7, 3)
    np.testing.assert_array_equal(padded[:2, :3, :5], frames)
    np.testing.assert_array_equal(padded[3, :3, :5], frames[1])
    np.testing.assert_array_equal(padded[:2, 3, :5], frames[:, 2])
    np.testing.assert_array_equal(padded[:2, :3, 6], frames[:, :, 4])
    assert pad_frames(frames, 2, 3, 5) is frames


def _drifting_scene(num_frames: int, offset: float) -> np.ndarray:
    """A smoothly panning gradient, brightened by `offset`: one window's version of the truth."""
    ys, xs = np.mgrid[0:24, 0:40]
    frames = [xs * 2 + ys + 2 * t + offset for t in range(num_frames)]  # at most 249
    return np.repeat(np.stack(frames)[..., None], 3, axis=3).astype(np.uint8)


def _frame_steps(frames: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))


def test_the_cross_fade_hides_a_jump_between_windows_that_a_hard_cut_shows() -> None:
    windows = plan_windows(57, window=25, overlap=9, frame_multiple=8)
    truth = _drifting_scene(57, 0.0)
    blended, cut = np.zeros_like(truth), np.zeros_like(truth)
    for window in windows:  # each window is off by 12 levels from its neighbour
        made = _drifting_scene(57, 12.0 * window.index)[window.start : window.stop]
        place_window(blended, made, window)
        cut[window.start : window.stop] = made
    typical = float(np.median(_frame_steps(truth)))
    assert _frame_steps(cut).max() > 4 * typical
    assert _frame_steps(blended).max() <= 2 * typical


def test_the_cross_fade_is_linear_over_the_overlap() -> None:
    out = np.zeros((12, 1, 1, 3), dtype=np.uint8)
    place_window(out, np.full((9, 1, 1, 3), 0, np.uint8), Window(0, 0, 9, 0))
    place_window(out, np.full((9, 1, 1, 3), 200, np.uint8), Window(1, 4, 9, 5))
    assert out[:, 0, 0, 0].tolist() == [0, 0, 0, 0, 33, 67, 100, 133, 167, 200, 200, 200]


Make = Callable[[np.ndarray, np.ndarray | None, Window], np.ndarray]


def _whole_clip_reference(plan: Plan, frames: np.ndarray, make: Make) -> np.ndarray:
    """What a run over the whole clip in memory makes: pad it all, place window by window."""
    padded = pad_frames(frames, plan.windows[-1].stop, plan.height, plan.width)
    out = np.empty_like(padded)
    for window in plan.windows:
        tail = out[window.start : window.start + window.overlap] if window.overlap else None
        place_window(out, make(padded[window.start : window.stop], tail, window), window)
    return out[: len(frames)]


class _CountingFrames:
    """Frames handed out one at a time, counting how many the reader holds at once."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames, self.next = frames, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self.frames)):
            self.next = index + 1
            yield self.frames[index]


@pytest.mark.parametrize("num_frames", [9, 25, 57, 60, 130])
def test_streamed_windows_equal_the_whole_clip_run_and_hold_one_window(num_frames: int) -> None:
    rng = np.random.default_rng(num_frames)
    frames = rng.integers(0, 256, (num_frames, 10, 14, 3), dtype=np.uint8)
    plan = Plan(plan_windows(num_frames, 25, 9, 8), height=16, width=16)
    source = _CountingFrames(frames)
    seen: list[tuple[int, int]] = []  # (window, frames read so far) at each model call

    def make(inputs: np.ndarray, tail: np.ndarray | None, window: Window) -> np.ndarray:
        # A model stand-in that depends on its input, the tail it continues and the window.
        seen.append((window.index, source.next))
        made = (inputs.astype(np.int16) * 3 + 7 * window.index) % 256
        if tail is not None:
            made[: len(tail)] = (made[: len(tail)] + tail) // 2
        return made.astype(np.uint8)

    progress = StepProgress(RecordingHooks(), steps=1, window_s=[(1.0, 0.0)] * len(plan.windows))
    batches = list(stream_windows(plan, iter(source), num_frames, progress, make))
    streamed, calls = np.concatenate(batches), list(seen)
    np.testing.assert_array_equal(streamed, _whole_clip_reference(plan, frames, make))
    # Each window's call has read its own frames and no more: the clip is never all in memory.
    assert [read for _, read in calls] == [min(w.stop, num_frames) for w in plan.windows]
    # Frames go on once final: every window but the last hands on up to where the next starts.
    assert [len(b) for b in batches[:-1]] == [
        b.start - a.start for a, b in itertools.pairwise(plan.windows)
    ][: len(batches) - 1]


def test_a_window_stream_that_ends_early_is_an_error() -> None:
    frames = np.zeros((20, 8, 8, 3), dtype=np.uint8)
    plan = Plan(plan_windows(30, 25, 9, 8), height=8, width=8)
    progress = StepProgress(RecordingHooks(), steps=1, window_s=[(1.0, 0.0)] * 2)
    with pytest.raises(ValueError, match="ended before its 30 frames"):
        list(stream_windows(plan, iter(frames), 30, progress, lambda f, t, w: f))


@pytest.mark.parametrize("num_steps", [4, 8, 50])
def test_denoising_steps_match_diffusers_sdedit_truncation(num_steps: int) -> None:
    timesteps = torch.linspace(1000, 1, num_steps)
    sigmas = torch.cat([timesteps / 1000, torch.zeros(1)])
    for strength in np.linspace(0.0, 1.0, 41):
        _, kept, _ = LTXConditionPipeline.get_timesteps(
            None,  # type: ignore[arg-type]  # a static computation that never reads self
            sigmas,
            timesteps,
            num_steps,
            float(strength),
        )
        assert denoising_steps(num_steps, float(strength)) == len(kept)


def test_progress_follows_steps_and_windows_and_reaches_one_at_the_end() -> None:
    hooks, syncs = RecordingHooks(), []
    progress = StepProgress(
        hooks, steps=2, window_s=[(6.0, 2.0), (3.0, 1.0)], sync=lambda: syncs.append(1)
    )
    for index in range(2):
        progress.start_window(index)
        for step in range(2):
            kwargs = {"latents": step}
            assert progress.on_step_end(None, step, 999, kwargs) is kwargs
        progress.window_done()
    assert hooks.ratios == pytest.approx([3 / 12, 6 / 12, 8 / 12, 9.5 / 12, 11 / 12, 1.0])
    assert hooks.checks == 2 * (1 + 2 + 1)
    assert len(syncs) == 4  # the device is waited for before each step's end is timed


def test_non_finite_model_output_is_an_error_not_black_frames() -> None:
    check_finite(torch.rand(2, 3, 4, 4))
    check_finite(np.random.default_rng(0).random((2, 4, 4, 3)))
    for bad in (float("nan"), float("inf")):
        values = torch.rand(2, 3, 4, 4, dtype=torch.bfloat16)
        values[1, 2, 3, 3] = bad
        with pytest.raises(RuntimeError, match="non-finite"):
            check_finite(values)
        with pytest.raises(RuntimeError, match="non-finite"):
            check_finite(values.float().numpy())


def test_a_cancel_raises_out_of_the_step_callback() -> None:
    hooks = RecordingHooks(cancel_at=3)
    progress = StepProgress(hooks, steps=4, window_s=[(1.0, 1.0)])
    progress.start_window(0)
    progress.on_step_end(None, 0, 999, {})
    with pytest.raises(TaskCancelled):
        progress.on_step_end(None, 1, 990, {})
    assert hooks.ratios == [0.125]


def test_window_seeds_are_stable_distinct_and_start_from_the_job_seed() -> None:
    seeds = [window_seed(42, index) for index in range(50)]
    assert seeds[0] == 42
    assert len(set(seeds)) == 50 and all(0 <= seed < 2**63 for seed in seeds)
    assert seeds == [window_seed(42, index) for index in range(50)]
    assert window_seed(43, 1) != window_seed(42, 1)


def test_seeded_generators_repeat_their_noise() -> None:
    device = resolve_device("cpu")
    first = torch.randn(4, generator=seeded_generator(device, 7))
    assert torch.equal(first, torch.randn(4, generator=seeded_generator(device, 7)))
    assert not torch.equal(first, torch.randn(4, generator=seeded_generator(device, 8)))


def test_devices_and_dtypes() -> None:
    cpu = resolve_device("cpu")
    assert compute_dtype(cpu) == compute_dtype(cpu, "float32") == torch.float32
    assert compute_dtype(cpu, "bfloat16") == torch.bfloat16
    assert compute_dtype(cpu, "float16") == torch.float16
    with pytest.raises(ValueError):
        compute_dtype(cpu, "int8")
    with pytest.raises(ValueError):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            resolve_device("cuda")


def test_stream_releasing_passes_the_items_on() -> None:
    assert list(stream_releasing(lambda: iter([5, 6]), resolve_device("cpu"))) == [5, 6]


def test_a_cancel_propagates_without_pinning_the_work_s_tensors() -> None:
    held: list[weakref.ref[torch.Tensor]] = []

    def denoise() -> Iterator[int]:
        latents = torch.zeros(1000)
        held.append(weakref.ref(latents))
        yield 1
        raise TaskCancelled()

    with pytest.raises(TaskCancelled) as caught:
        list(stream_releasing(denoise, resolve_device("cpu")))
    assert held[0]() is None
    # The traceback stays whole for the log.
    assert "denoise" in "".join(traceback.format_tb(caught.value.__traceback__))


def test_a_stream_that_fails_before_its_first_item_pins_nothing_either() -> None:
    held: list[weakref.ref[torch.Tensor]] = []

    def make() -> Iterator[int]:  # fails while setting up, e.g. encoding the prompt
        embeds = torch.zeros(1000)
        held.append(weakref.ref(embeds))
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        list(stream_releasing(make, resolve_device("cpu")))
    assert held[0]() is None


def test_a_chained_failure_releases_the_frames_of_its_cause_too() -> None:
    held: list[weakref.ref[torch.Tensor]] = []

    def decode() -> None:
        frames = torch.zeros(1000)
        held.append(weakref.ref(frames))
        raise ValueError("bad latents")

    def work() -> Iterator[int]:
        try:
            decode()
        except ValueError as error:
            raise RuntimeError("decode failed") from error
        yield 1

    with pytest.raises(RuntimeError, match="decode failed") as caught:
        list(stream_releasing(work, resolve_device("cpu")))
    assert isinstance(caught.value.__cause__, ValueError) and held[0]() is None


def test_module_bytes_count_parameters_and_buffers() -> None:
    layer = torch.nn.BatchNorm1d(10)  # 20 parameters, 21 buffer values (with the counter)
    assert module_bytes(layer) == 20 * 4 + 20 * 4 + 8


def test_token_counts_match_the_published_grids() -> None:
    ltx = TokenGeometry(temporal_ratio=8, spatial_ratio=32)
    assert ltx.tokens(241, 768, 1280) == 31 * 24 * 40
    wan = TokenGeometry(temporal_ratio=4, spatial_ratio=8, patch_t=1, patch=2)
    assert wan.tokens(161, 768, 1280) == 41 * 48 * 80


def test_the_speed_record_moves_halfway_to_each_measurement() -> None:
    record = SpeedRecord(step_token_s=1.0, codec_pixel_s=1.0, activation_bytes_per_token=100.0)
    record.observe_window(denoise_s=0.0, steps=3, tokens=10, codec_s=200.0, pixels=100)
    assert (record.step_token_s, record.codec_pixel_s) == (0.5, 1.5)


def test_measured_peaks_bound_memory_without_a_small_job_inflating_large_ones() -> None:
    record = SpeedRecord(step_token_s=1.0, codec_pixel_s=1.0, activation_bytes_per_token=100.0)
    assert record.activation_bytes(50) == 5000  # nothing measured: the documented figure
    # A small window's peak is mostly fixed overhead: 9000 bytes for 10 tokens.
    record.observe_peak(activation_bytes=9000, tokens=10)
    assert record.activation_bytes(10) == 9000
    assert record.activation_bytes(1000) == 9000 + 990 * 100  # not 1000 * 900
    record.observe_peak(activation_bytes=8000, tokens=10)  # a size keeps its largest peak
    assert record.activation_bytes(5) == 9000
    record.observe_peak(activation_bytes=60_000, tokens=1000)
    assert record.activation_bytes(500) == 60_000  # the smallest measured size above bounds it
    assert record.activation_bytes(10) == 9000
    assert record.activation_bytes(2000) == 60_000 + 1000 * 100  # growth 51.5/token < 100
    record.observe_peak(activation_bytes=400_000, tokens=2000)  # growth 340/token measured
    assert record.activation_bytes(3000) == 400_000 + 1000 * 340


def test_estimates_add_time_over_windows_but_not_memory() -> None:
    geometry = TokenGeometry(temporal_ratio=8, spatial_ratio=32)
    record = SpeedRecord(step_token_s=0.01, codec_pixel_s=1e-6, activation_bytes_per_token=1000)
    windows = plan_windows(57, 25, 9, 8)  # 25 + 25 + 25 frames, 4 x 3 x 5 = 60 tokens each
    estimate = estimate_windows(
        windows,
        96,
        160,
        steps=4,
        geometry=geometry,
        record=record,
        resident_bytes=10**6,
        transient_bytes=5000,
    )
    assert estimate.gpu_bytes == 10**6 + 60 * 1000
    assert estimate.seconds == pytest.approx(3 * (4 * 60 * 0.01 + 25 * 96 * 160 * 1e-6))
    small_activations = estimate_windows(
        windows,
        96,
        160,
        steps=4,
        geometry=geometry,
        record=record,
        resident_bytes=10**6,
        transient_bytes=10**5,
    )
    assert small_activations.gpu_bytes == 10**6 + 10**5  # the text encoder's visit is larger
