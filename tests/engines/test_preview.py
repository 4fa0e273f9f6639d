"""The preview engine on real frames: determinism, strength, stability, looks, cancel, progress."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vidmorph.engines.base import GenerationInput, generate_clip
from vidmorph.engines.looks import NAMED_LOOKS
from vidmorph.engines.preview import BATCH_FRAMES, PreviewEngine
from vidmorph.errors import TaskCancelled
from vidmorph.media.clip import Clip

Frames = np.ndarray
ALL_LOOKS = [*NAMED_LOOKS, "a dog running on the beach"]
FPS = 24.0


class RecordingHooks:
    """Records progress; cancels (raises TaskCancelled) once `cancel_after` reports came in."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.ratios: list[float] = []
        self.cancel_after = cancel_after

    def progress(self, ratio: float) -> None:
        self.ratios.append(ratio)

    def check_cancelled(self) -> None:
        if self.cancel_after is not None and len(self.ratios) >= self.cancel_after:
            raise TaskCancelled()


def scene(num_frames: int = 3, height: int = 96, width: int = 160, step_px: int = 6) -> Frames:
    """A colourful gradient with a fixed textured card on the left and bars moving on the right."""
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack([40 + xs * 180 // width, 50 + ys * 160 // height, 200 - xs // 2], -1)
    card = np.random.default_rng(0).integers(0, 256, (height // 2, width // 4, 3))
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        picture = background.copy()
        picture[height // 4 : height // 4 + card.shape[0], 8 : 8 + card.shape[1]] = card
        bars = ((xs + step_px * index) // 12) % 3
        right = xs >= width // 2
        picture[right & (bars == 0)] = (220, 30, 40)
        picture[right & (bars == 1)] = (30, 60, 220)
        frames[index] = picture
    return frames


def render(
    frames: Frames,
    prompt: str,
    strength: float = 1.0,
    seed: int = 7,
    engine: PreviewEngine | None = None,
) -> Frames:
    height, width = frames.shape[1:3]
    job = GenerationInput(prompt, strength, seed, width, height, FPS)
    out = generate_clip((engine or PreviewEngine()), Clip(frames, FPS), job, RecordingHooks())
    assert out.frames.shape == frames.shape and out.fps == FPS
    return out.frames


def mean_abs_diff(a: Frames, b: Frames) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def luma(frames: Frames) -> np.ndarray:
    return frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def gradient(frames: Frames) -> np.ndarray:
    y = luma(frames)
    return np.abs(np.diff(y, axis=-1))[..., :-1, :] + np.abs(np.diff(y, axis=-2))[..., :-1]


def chroma(frames: Frames) -> float:
    return float((frames.max(-1).astype(np.int16) - frames.min(-1)).mean())


def saturation(frames: Frames) -> float:
    """Mean HSV saturation: chroma relative to brightness, so darkening alone keeps it."""
    brightest = np.maximum(frames.max(-1).astype(np.float64), 1.0)
    return float(((brightest - frames.min(-1)) / brightest).mean())


def test_engine_describes_itself_and_loads_only_on_the_cpu() -> None:
    engine = PreviewEngine()
    assert engine.info.name == "preview" and engine.info.deterministic
    assert engine.info.devices == ("cpu",)
    engine.load("cpu")
    with pytest.raises(ValueError):
        engine.load("cuda")


def test_same_seed_gives_identical_frames() -> None:
    frames = scene()
    first = render(frames, "an oil painting at night in the rain", 0.6)
    second = render(frames, "an oil painting at night in the rain", 0.6, engine=PreviewEngine(1))
    assert np.array_equal(first, second)


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_different_seeds_give_different_frames(prompt: str) -> None:
    frames = scene(num_frames=1)
    assert not np.array_equal(render(frames, prompt, seed=1), render(frames, prompt, seed=2))


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_strength_zero_returns_input(prompt: str) -> None:
    frames = scene(num_frames=2)
    assert np.array_equal(render(frames, prompt, 0.0), frames)


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_departure_grows_with_structure_transformation(prompt: str) -> None:
    frames = scene(num_frames=2)
    departures = [mean_abs_diff(render(frames, prompt, s), frames) for s in (0.0, 0.3, 0.6, 1.0)]
    assert departures[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(departures)), departures


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_output_keeps_the_input_layout(prompt: str) -> None:
    frames = scene(num_frames=2)
    edges_in, edges_out = gradient(frames), gradient(render(frames, prompt, 0.3))
    assert np.corrcoef(edges_in.ravel(), edges_out.ravel())[0, 1] > 0.3


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_static_region_stays_static_across_frames(prompt: str) -> None:
    out = render(scene(num_frames=4), prompt, 0.8)
    still = out[:, :, : out.shape[2] // 2 - 16]  # the moving bars start at half width
    assert all(np.array_equal(still[0], frame) for frame in still[1:])


def test_input_frames_are_left_untouched() -> None:
    frames = scene()
    before = frames.copy()
    render(frames, "an oil painting of a neon night in the rain")
    assert np.array_equal(frames, before)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (9, 17), (200, 3)])
def test_tiny_and_odd_frame_sizes_keep_their_shape(size: tuple[int, int]) -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, *size, 3), dtype=np.uint8)
    for prompt in ("pixel art watercolor oil sketch", "neon comic noir", "a harbour"):
        render(frames, prompt, 0.7)  # render() checks shape and fps


def test_night_is_darker_and_bluer_than_input() -> None:
    frames = scene()
    out = render(frames, "a street at night").astype(np.float64)
    assert luma(out).mean() < 0.7 * luma(frames).mean()
    blue_minus_red = lambda f: float((f[..., 2] - f[..., 0]).mean())  # noqa: E731
    assert blue_minus_red(out) > blue_minus_red(frames.astype(np.float64)) + 10


def test_sunset_is_warmer() -> None:
    frames = scene().astype(np.float64)
    out = render(scene(), "sunset over the sea").astype(np.float64)
    assert (out[..., 0] - out[..., 2]).mean() > (frames[..., 0] - frames[..., 2]).mean() + 25


def test_winter_is_cooler_and_paler() -> None:
    frames = scene()
    out = render(frames, "a snowy morning")
    warmth = lambda f: float((f[..., 0].astype(np.float64) - f[..., 2]).mean())  # noqa: E731
    assert warmth(out) < warmth(frames) - 10
    assert chroma(out) < 0.8 * chroma(frames)


def test_neon_is_more_saturated_and_glows_along_edges() -> None:
    assert saturation(render(scene(), "neon city")) > 1.15 * saturation(scene())
    grey = np.full((1, 64, 96, 3), 40, dtype=np.uint8)
    grey[:, :, 48:] = 200  # no colour anywhere, so colour along the edge is glow
    out = render(grey, "neon city")[0].astype(np.int16)
    column_chroma = (out.max(-1) - out.min(-1)).mean(axis=0)
    assert column_chroma[44:52].max() > column_chroma[:30].max() + 80


def test_noir_is_grayscale() -> None:
    out = render(scene(), "film noir")
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_sepia_is_brown_monochrome() -> None:
    out = render(scene(), "sepia").astype(np.int16)
    red, green, blue = out[..., 0], out[..., 1], out[..., 2]
    assert (red >= green).all() and (green >= blue).all()
    assert (red - blue).mean() > 25


def test_sketch_is_pale_grey_paper_with_dark_lines_on_edges() -> None:
    frames = np.full((1, 96, 160, 3), (90, 160, 220), dtype=np.uint8)
    frames[:, 30:70, 50:110] = (200, 60, 40)  # a red card: its outline should be drawn
    out = render(frames, "pencil sketch").astype(np.int16)
    assert (out.max(-1) - out.min(-1)).max() < 24  # grey, with a touch of warm paper
    paper = luma(out[0, 5:20, 5:40]).mean()
    outline = luma(out[0, 26:34, 60:100]).min(axis=0).mean()  # darkest row across the top edge
    assert paper > 180
    assert outline < paper - 80


def detailed_scene(height: int = 96, width: int = 160) -> Frames:
    """Flat colour fields covered in pixel-level detail, which painting should smooth away."""
    frames = scene(num_frames=1, height=height, width=width).astype(np.int16)
    detail = np.random.default_rng(3).integers(-40, 41, (1, height, width, 1))
    return np.clip(frames + detail, 0, 255).astype(np.uint8)


def neighbour_difference(frames: Frames) -> float:
    return float(np.abs(np.diff(luma(frames), axis=-1)).mean())


def test_watercolor_softens_detail_and_keeps_colour() -> None:
    frames = detailed_scene(192, 320)
    out = render(frames, "watercolour")
    assert neighbour_difference(out) < 0.6 * neighbour_difference(frames)
    assert saturation(out) > 0.6 * saturation(frames)  # pastel washes, not grey


def test_oil_painting_flattens_detail_into_dabs() -> None:
    frames = detailed_scene(192, 320)
    out = render(frames, "oil painting")
    assert neighbour_difference(out) < 0.6 * neighbour_difference(frames)


def test_comic_posterizes_colours_and_inks_edges() -> None:
    ys, xs = np.mgrid[0:96, 0:160]
    ramp = np.stack([60 + xs, 80 + ys, 200 - xs // 2], -1)  # a smooth, many-coloured ramp
    frames = ramp.astype(np.uint8)[None].copy()
    frames[:, 30:70, 50:110] = (230, 200, 80)  # a yellow card: its outline should be inked
    out = render(frames, "comic book")[0]
    ramp_area = out[5:20, 5:40].reshape(-1, 3)
    assert len(np.unique(ramp_area, axis=0)) <= 6 < len(np.unique(frames[0, 5:20, 5:40], axis=0))
    outline = luma(out[26:34, 60:100]).min(axis=0)  # darkest row across the top edge
    assert outline.max() < 40 < luma(out[40:60, 60:100]).min()


def test_pixel_art_is_blocky() -> None:
    frames = scene(num_frames=1, height=384, width=640)
    out = render(frames, "pixel art")[0]
    block = 4  # 1/96 of the height
    tiles = out.reshape(384 // block, block, 640 // block, block, 3)
    assert (tiles == tiles[:, :1, :, :1]).all()
    assert len(np.unique(out.reshape(-1, 3), axis=0)) < 0.02 * out.shape[0] * out.shape[1]


def test_unknown_prompt_gets_a_seeded_look() -> None:
    frames = scene(num_frames=1)
    first = render(frames, "a dog running on the beach", seed=1)
    assert mean_abs_diff(first, frames) > 5
    assert np.array_equal(first, render(frames, "a dog running on the beach", seed=1))
    assert mean_abs_diff(first, render(frames, "a dog running on the beach", seed=2)) > 2


def test_progress_reaches_one_and_is_monotonic() -> None:
    frames = scene(num_frames=2 * BATCH_FRAMES + 3)
    hooks = RecordingHooks()
    job = GenerationInput("sunset", 0.5, 1, 160, 96, FPS)
    generate_clip(PreviewEngine(), Clip(frames, FPS), job, hooks)
    assert len(hooks.ratios) == 3
    assert hooks.ratios == sorted(hooks.ratios) and hooks.ratios[-1] == 1.0


def test_cancel_stops_within_one_batch() -> None:
    frames = scene(num_frames=3 * BATCH_FRAMES)
    job = GenerationInput("sunset", 0.5, 1, 160, 96, FPS)
    hooks = RecordingHooks(cancel_after=1)
    with pytest.raises(TaskCancelled):
        generate_clip(PreviewEngine(), Clip(frames, FPS), job, hooks)
    assert hooks.ratios == [1 / 3]


def test_cancel_before_the_first_batch_renders_nothing() -> None:
    hooks = RecordingHooks(cancel_after=0)
    job = GenerationInput("sunset", 0.5, 1, 160, 96, FPS)
    with pytest.raises(TaskCancelled):
        generate_clip(PreviewEngine(), Clip(scene(), FPS), job, hooks)
    assert hooks.ratios == []


def test_rejects_strength_outside_zero_to_one() -> None:
    job = GenerationInput("sunset", 1.5, 1, 160, 96, FPS)
    with pytest.raises(ValueError):
        generate_clip(PreviewEngine(), Clip(scene(), FPS), job, RecordingHooks())
