"""Pixel formats: frame shapes, the YUV420P layout, and conversions both ways."""

from __future__ import annotations

import numpy as np
import pytest

from vidmorph.media.clip import RGB24, YUV420P, Clip, ClipStream, frame_shape
from vidmorph.media.pixels import Converter, planes, to_rgb, to_yuv


def _smooth(height: int = 96, width: int = 160, frames: int = 2) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    picture = np.stack([40 + xs * 180 // width, 50 + ys * 160 // height, 200 - xs // 2], -1)
    return np.repeat(picture[None].astype(np.uint8), frames, axis=0)


def test_frame_shapes_follow_the_format() -> None:
    assert frame_shape(RGB24, 6, 4) == (4, 6, 3)
    assert frame_shape(YUV420P, 6, 4) == (6, 6)
    with pytest.raises(ValueError, match="even"):
        frame_shape(YUV420P, 5, 4)
    with pytest.raises(ValueError, match="Unknown pixel format"):
        frame_shape("nv12", 6, 4)


def test_a_stream_checks_batches_against_its_format() -> None:
    good = np.zeros((1, 6, 6), np.uint8)
    assert len(list(ClipStream([good], 1, 6, 4, 24.0, YUV420P).checked())) == 1
    with pytest.raises(ValueError, match="yuv420p stream"):
        list(ClipStream([np.zeros((1, 4, 6, 3), np.uint8)], 1, 6, 4, 24.0, YUV420P).checked())
    with pytest.raises(ValueError, match="even"):
        ClipStream([good], 1, 5, 4, 24.0, YUV420P)
    with pytest.raises(ValueError, match="holds RGB"):
        ClipStream([good], 1, 6, 4, 24.0, YUV420P).collect()


def test_planes_are_views_that_tile_the_frame() -> None:
    frame = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)  # 8x4 picture
    y, u, v = planes(frame)
    assert (y.shape, u.shape, v.shape) == ((4, 8), (2, 4), (2, 4))
    assert np.shares_memory(y, frame) and np.shares_memory(u, frame) and np.shares_memory(v, frame)
    assert np.array_equal(np.concatenate([y.ravel(), u.ravel(), v.ravel()]), frame.ravel())


def test_grey_is_limited_range_luma_with_neutral_chroma() -> None:
    levels = np.array([0, 128, 255], dtype=np.uint8)
    for level, expected_y in zip(levels, (16, 126, 235), strict=True):
        grey = np.full((4, 6, 3), level, np.uint8)
        y, u, v = planes(Converter(RGB24, YUV420P, 6, 4).convert(grey))
        assert (y == expected_y).all(), (level, y)
        assert (u == 128).all() and (v == 128).all()
        back = Converter(YUV420P, RGB24, 6, 4).convert(
            Converter(RGB24, YUV420P, 6, 4).convert(grey)
        )
        assert np.abs(back.astype(int) - level).max() <= 1


def test_bt709_weights_give_pure_colours_their_luma() -> None:
    # BT.709: Y = 16 + 219 (0.2126 R + 0.7152 G + 0.0722 B); BT.601 would give 81, 145, 41.
    for rgb, expected_y in (((255, 0, 0), 63), ((0, 255, 0), 173), ((0, 0, 255), 32)):
        y, _, _ = planes(Converter(RGB24, YUV420P, 6, 4).convert(np.full((4, 6, 3), rgb, np.uint8)))
        assert abs(int(y[0, 0]) - expected_y) <= 1, (rgb, y[0, 0])


def test_a_smooth_picture_survives_the_round_trip() -> None:
    frames = _smooth()
    clip = Clip(frames, 24.0)
    yuv = to_yuv(clip.stream())
    assert yuv.pixel_format == YUV420P and yuv.frame_shape == (144, 160)
    back = to_rgb(yuv).collect()
    assert back.frames.shape == frames.shape
    assert np.abs(back.frames.astype(int) - frames).mean() < 1.5


def test_converting_to_the_same_format_is_the_same_stream() -> None:
    stream = Clip(_smooth(), 24.0).stream()
    assert to_rgb(stream) is stream


def test_a_converter_of_one_format_to_itself_copies() -> None:
    frame = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)
    out = Converter(YUV420P, YUV420P, 8, 4).convert(frame)
    assert np.array_equal(out, frame) and not np.shares_memory(out, frame)
