"""The preview engine on YUV420P frames, as a task runs it: the same looks as on RGB, checked
against the RGB renderer and on the properties every look keeps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.engines.test_preview import (
    ALL_LOOKS,
    FPS,
    RecordingHooks,
    luma,
    mean_abs_diff,
    render,
    scene,
)
from vidmorph.engines.base import GenerationInput
from vidmorph.engines.looks import look_for_prompt
from vidmorph.engines.preview import LookRenderer, PreviewEngine
from vidmorph.media.clip import YUV420P, Clip, ClipStream
from vidmorph.media.pixels import planes, to_rgb, to_yuv
from vidmorph.service.render import pixel_format

GRADE_LOOKS = ["night", "rain", "sunset", "winter", "noir", "sepia", "a dog running on the beach"]
STYLISED_LOOKS = ["pixel art", "comic", "sketch", "watercolor", "oil painting", "neon"]
Frames = np.ndarray


def smooth_scene(num_frames: int = 2) -> Frames:
    """`scene` without its random card: 4:2:0 cannot keep per-pixel colour noise, and these
    tests compare looks, not chroma subsampling."""
    frames = scene(num_frames)
    frames[:, 24:72, 8:48] = (120, 140, 90)
    return frames


def yuv_of(frames: Frames) -> Frames:
    stream = to_yuv(Clip(frames, FPS).stream())
    return np.concatenate(list(stream.checked()))


def render_yuv(
    yuv: Frames, prompt: str, strength: float = 1.0, seed: int = 7, threads: int | None = None
) -> Frames:
    """The engine's YUV420P output for YUV420P input (batches of 2)."""
    height, width = yuv.shape[1] * 2 // 3, yuv.shape[2]
    job = GenerationInput(prompt, strength, seed, width, height, FPS)
    batches = [yuv[start : start + 2] for start in range(0, len(yuv), 2)]
    stream = ClipStream(batches, len(yuv), width, height, FPS, YUV420P)
    made = list(PreviewEngine(threads).generate(stream, job, RecordingHooks()))
    out = np.concatenate(made)
    assert out.shape == yuv.shape and out.dtype == np.uint8
    return out


def as_rgb(yuv: Frames) -> Frames:
    height, width = yuv.shape[1] * 2 // 3, yuv.shape[2]
    stream = ClipStream([yuv], len(yuv), width, height, FPS, YUV420P)
    return to_rgb(stream).collect().frames


def test_a_task_runs_the_preview_engine_on_yuv() -> None:
    assert pixel_format(PreviewEngine()) == YUV420P


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_grading_looks_are_graded_in_yuv_and_stylising_ones_in_rgb(prompt: str) -> None:
    renderer = LookRenderer(look_for_prompt(prompt, 7), 0.8, 160, 96)
    assert renderer.grade_only == (prompt in GRADE_LOOKS)


@pytest.mark.parametrize("prompt", GRADE_LOOKS)
@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_a_yuv_grade_follows_the_rgb_one(prompt: str, strength: float) -> None:
    # A decoded input is 4:2:0 whichever way it goes; both outputs end as 4:2:0 in the file.
    source = yuv_of(smooth_scene())
    reference = as_rgb(yuv_of(render(as_rgb(source), prompt, strength)))
    via_yuv = as_rgb(render_yuv(source, prompt, strength))
    look = mean_abs_diff(reference, as_rgb(source))
    # Within a fifth of how far the look moves the picture, plus a level of rounding.
    assert mean_abs_diff(via_yuv, reference) < 0.2 * look + 1.0, (prompt, look)


@pytest.mark.parametrize("prompt", STYLISED_LOOKS)
def test_a_stylising_look_renders_the_rgb_picture_of_its_yuv_input(prompt: str) -> None:
    yuv = yuv_of(scene())
    via_rgb = yuv_of(render(as_rgb(yuv), prompt, 0.8))
    assert np.array_equal(render_yuv(yuv, prompt, 0.8), via_rgb)


@pytest.mark.parametrize("prompt", ALL_LOOKS)
def test_strength_zero_returns_the_yuv_input(prompt: str) -> None:
    yuv = yuv_of(scene())
    assert np.array_equal(render_yuv(yuv, prompt, 0.0), yuv)


@pytest.mark.parametrize("prompt", GRADE_LOOKS)
def test_departure_grows_with_strength_in_yuv(prompt: str) -> None:
    yuv = yuv_of(smooth_scene())
    departures = [mean_abs_diff(render_yuv(yuv, prompt, s), yuv) for s in (0.0, 0.3, 0.6, 1.0)]
    assert departures[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(departures)), departures


def test_yuv_frames_are_identical_across_thread_counts_and_differ_across_seeds() -> None:
    yuv = yuv_of(scene(num_frames=4))
    first = render_yuv(yuv, "a rainy night", 0.6, threads=1)
    assert np.array_equal(first, render_yuv(yuv, "a rainy night", 0.6, threads=2))
    assert not np.array_equal(first, render_yuv(yuv, "a rainy night", 0.6, seed=8))


@pytest.mark.parametrize("prompt", GRADE_LOOKS)
def test_a_static_region_stays_static_in_yuv(prompt: str) -> None:
    yuv = yuv_of(scene(num_frames=4))
    out = render_yuv(yuv, prompt, 0.8)
    # The moving bars start at half width: left of them, every plane stays as it was.
    still = [[plane[:, : plane.shape[1] // 2 - 8] for plane in planes(frame)] for frame in out]
    for later in still[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(still[0], later, strict=True))


def test_yuv_night_is_darker_and_bluer() -> None:
    frames = smooth_scene()
    out = as_rgb(render_yuv(yuv_of(frames), "a street at night")).astype(np.float64)
    assert luma(out).mean() < 0.7 * luma(frames).mean()
    blue_minus_red = lambda f: float((f[..., 2] - f[..., 0]).mean())  # noqa: E731
    assert blue_minus_red(out) > blue_minus_red(frames.astype(np.float64)) + 10


def test_yuv_noir_has_neutral_chroma_and_sepia_stays_brown() -> None:
    yuv = yuv_of(scene())
    noir = render_yuv(yuv, "film noir")
    height = noir.shape[1] * 2 // 3
    assert (noir[:, height:] == 128).all()  # grey: no colour at all
    sepia = as_rgb(render_yuv(yuv, "sepia")).astype(np.int16)
    red, green, blue = sepia[..., 0], sepia[..., 1], sepia[..., 2]
    assert (red >= green - 1).all() and (green >= blue - 1).all()
    assert (red - blue).mean() > 25
