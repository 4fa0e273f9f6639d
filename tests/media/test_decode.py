"""read_clip() and FrameReader: center crop, exact output size, timestamp resampling, trimming,
rotation, images, batches, damaged input and the pixel limit."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.videos import FRAME_INDEX_STEP, make_damaged_mjpeg, make_image, make_video
from vidmorph.errors import InvalidMedia
from vidmorph.media.clip import YUV420P
from vidmorph.media.decode import FrameReader, read_clip
from vidmorph.media.pixels import to_rgb, to_yuv

RED, GREEN, BLUE = (230, 30, 30), (30, 200, 30), (30, 30, 230)


def _framed(size: tuple[int, int], margin_px: int, *, sides: bool) -> np.ndarray:
    """Green picture whose outer `margin_px` (left/right or top/bottom) is red, with a
    blue 8 px stripe just inside the margins: after a correct crop the stripes are the edges."""
    width, height = size
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = GREEN
    if sides:
        picture[:, : margin_px + 8] = BLUE
        picture[:, width - margin_px - 8 :] = BLUE
        picture[:, :margin_px] = RED
        picture[:, width - margin_px :] = RED
    else:
        picture[: margin_px + 8] = BLUE
        picture[height - margin_px - 8 :] = BLUE
        picture[:margin_px] = RED
        picture[height - margin_px :] = RED
    return picture


def _levels(frames: np.ndarray) -> list[int]:
    """Which source frame each output frame shows, read from the "frame_index" grey level."""
    return [round(float(frame.mean()) / FRAME_INDEX_STEP) for frame in frames]


def test_landscape_1080p_side_margins_are_cropped_away(tmp_path: Path) -> None:
    # 1920x1080 -> 5:3 keeps the middle 1800 columns: 60 px go from each side.
    picture = _framed((1920, 1080), 60, sides=True)
    video = make_video(
        tmp_path / "wide.mp4", seconds=1 / 24, size=(1920, 1080), pattern=lambda _: picture
    )

    frame = read_clip(video, width=1280, height=768, max_seconds=5).frames[0].astype(int)

    assert frame.shape == (768, 1280, 3)
    for column in (frame[:, 1], frame[:, -2]):  # the stripes, not the red margins
        assert np.abs(column - BLUE).max() < 40
    assert np.abs(frame[:, 640] - GREEN).max() < 20


def test_portrait_input_loses_top_and_bottom(tmp_path: Path) -> None:
    # 720x1280 -> 768x1280 (3:5) keeps the middle 1200 rows: 40 px go from top and bottom.
    picture = _framed((720, 1280), 40, sides=False)
    video = make_video(
        tmp_path / "tall.mp4", seconds=1 / 24, size=(720, 1280), pattern=lambda _: picture
    )

    frame = read_clip(video, width=768, height=1280, max_seconds=5).frames[0].astype(int)

    assert frame.shape == (1280, 768, 3)
    for row in (frame[1], frame[-2]):
        assert np.abs(row - BLUE).max() < 40
    assert np.abs(frame[640] - GREEN).max() < 20


@pytest.mark.parametrize("size", [(320, 240), (240, 240), (240, 320), (256, 144)])
def test_any_input_shape_gives_exactly_the_requested_size(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.25, size=size)

    clip = read_clip(video, width=320, height=192, max_seconds=5)

    assert clip.frames.shape == (6, 192, 320, 3)
    assert clip.fps == 24.0


def test_30fps_input_resamples_to_24fps_by_timestamp(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=2.0, fps=30, pattern="frame_index")

    clip = read_clip(video, width=64, height=48, fps=24, max_seconds=10)

    assert clip.num_frames == 48
    # Output i (at i/24 s) shows the source frame on screen then: floor(i * 30 / 24).
    assert _levels(clip.frames) == [i * 30 // 24 for i in range(48)]


def test_12fps_input_repeats_frames_and_60fps_input_drops_them(tmp_path: Path) -> None:
    slow = make_video(tmp_path / "slow.mp4", seconds=1.0, fps=12, pattern="frame_index")
    fast = make_video(tmp_path / "fast.mp4", seconds=1.0, fps=60, pattern="frame_index")

    slow_clip = read_clip(slow, width=64, height=48, max_seconds=10)
    fast_clip = read_clip(fast, width=64, height=48, max_seconds=10)

    assert _levels(slow_clip.frames) == [i // 2 for i in range(24)]
    assert _levels(fast_clip.frames) == [i * 60 // 24 for i in range(24)]


def test_clip_is_trimmed_to_max_seconds(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=2.0, fps=25, pattern="frame_index")

    clip = read_clip(video, width=64, height=48, max_seconds=1.0)

    assert clip.num_frames == 24
    assert _levels(clip.frames)[-1] == 23 * 25 // 24


def test_short_input_keeps_its_own_duration(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=1.5)

    assert read_clip(video, width=64, height=48, max_seconds=10).num_frames == 36


def _rotated_phone_video(path: Path) -> Path:
    """Stored landscape with its top-left quarter red, flagged to be shown turned 90 degrees
    counter-clockwise, as FFmpeg and players do: upright, that corner is bottom-left."""

    def top_left_marked(_: int) -> np.ndarray:
        picture = np.zeros((240, 320, 3), dtype=np.uint8)
        picture[:120, :160] = RED
        return picture

    return make_video(path, seconds=0.25, pattern=top_left_marked, rotation_deg=90)


def _assert_upright(frame: np.ndarray) -> None:
    """`_rotated_phone_video`'s picture shown upright: red bottom-left only."""
    assert frame[-10, 10, 0] > 150
    assert frame[10, 10, 0] < 50 and frame[-10, -10, 0] < 50


def test_rotated_phone_video_is_decoded_upright(tmp_path: Path) -> None:
    video = _rotated_phone_video(tmp_path / "in.mp4")

    _assert_upright(read_clip(video, width=240, height=320, max_seconds=1).frames[0])


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF"])
def test_image_gives_a_one_frame_clip(tmp_path: Path, fmt: str) -> None:
    image = make_image(tmp_path / f"in.{fmt.lower()}", (300, 200), fmt)

    clip = read_clip(image, width=320, height=192, max_seconds=10)

    assert clip.frames.shape == (1, 192, 320, 3)


def test_progress_rises_to_one(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=1.0)
    seen: list[float] = []

    read_clip(video, width=64, height=48, max_seconds=10, on_progress=seen.append)

    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 2


def test_unreadable_file_raises_invalid_media(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"\x00junk" * 100)

    with pytest.raises(InvalidMedia):
        read_clip(tmp_path / "junk.mp4", width=64, height=48, max_seconds=10)


def test_the_reader_knows_its_count_up_front_and_streams_fresh_batches(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=2.0, size=(320, 240), fps=30)
    whole = read_clip(video, width=64, height=48, max_seconds=10).frames
    with FrameReader(video, width=64, height=48, max_seconds=10, batch_frames=5) as reader:
        assert reader.num_frames == 48  # before any frame is decoded
        batches = list(reader.batches())
    assert [len(b) for b in batches] == [5] * 9 + [3]
    assert len({id(b) for b in batches}) == len(batches)  # none reused for a later batch
    assert np.array_equal(np.concatenate(batches), whole)


def test_a_header_without_a_duration_is_counted_from_its_packets(tmp_path: Path) -> None:
    # Motion-JPEG in Matroska: the muxer writes the duration, so count it both ways.
    video = make_damaged_mjpeg(tmp_path / "in.mkv", seconds=1.5, damaged_from_s=99)
    with FrameReader(video, width=64, height=48, max_seconds=10) as reader:
        assert reader.num_frames == 36
        assert sum(len(b) for b in reader.batches()) == 36


def test_input_damaged_midway_fails_saying_where(tmp_path: Path) -> None:
    video = make_damaged_mjpeg(tmp_path / "in.mkv", seconds=3.0, damaged_from_s=2.0)
    handed_on = 0
    with (
        FrameReader(video, width=64, height=48, max_seconds=10, batch_frames=4) as reader,
        pytest.raises(InvalidMedia, match=r"damaged at 2\.0 s"),
    ):
        for batch in reader.batches():
            handed_on += len(batch)
    assert 40 <= handed_on <= 48  # the good frames went on before the damage was met


def test_the_decoder_refuses_frames_above_the_pixel_limit(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.5, size=(320, 240))
    with (
        FrameReader(video, width=64, height=48, max_seconds=1, max_pixels=320 * 239) as reader,
        pytest.raises(InvalidMedia, match="could not be decoded"),
    ):
        list(reader.batches())
    with FrameReader(video, width=64, height=48, max_seconds=1, max_pixels=320 * 240) as reader:
        assert sum(len(b) for b in reader.batches()) == 12


def _gap_video(path: Path, gap_s: float) -> Path:
    """Two frames in Matroska, the second `gap_s` after the first (variable frame rate)."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 192, "yuv420p"
        for index, pts in enumerate((0, round(gap_s * 24), round(gap_s * 24) + 1)):
            picture = np.full((192, 320, 3), 60 * index, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 24)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_a_frame_on_screen_for_a_long_gap_is_handed_on_a_batch_at_a_time(tmp_path: Path) -> None:
    video = _gap_video(tmp_path / "gap.mkv", gap_s=20.0)
    tracemalloc.start()
    try:
        with FrameReader(video, width=320, height=192, max_seconds=30, batch_frames=12) as reader:
            assert reader.num_frames == 482
            count = first_level = 0
            for batch in reader.batches():
                if count == 0:
                    first_level = int(batch[0].mean())
                count += len(batch)
                del batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 482 and first_level < 10
    # 480 slots of the first frame are 85 MB as one piece; a batch at a time is a few.
    assert peak < 20 * 2**20, peak


def test_a_container_duration_that_is_the_audio_s_does_not_stretch_the_video(
    tmp_path: Path,
) -> None:
    video = make_video(
        tmp_path / "in.mkv", seconds=1.0, size=(160, 96), audio=True, audio_seconds=20.0
    )
    with FrameReader(video, width=64, height=48, max_seconds=60) as reader:
        assert reader.num_frames == 24


def test_the_yuv_reader_gives_the_picture_the_rgb_reader_does(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.5, size=(640, 360), pattern="gradient")
    size = {"width": 320, "height": 192, "max_seconds": 1}
    with FrameReader(video, **size) as reader:
        rgb = to_yuv(reader.stream())
        expected = np.concatenate(list(rgb.checked())).astype(int)
    with FrameReader(video, pixel_format=YUV420P, **size) as reader:
        stream = reader.stream()
        assert stream.pixel_format == YUV420P and stream.frame_shape == (288, 320)
        got = np.concatenate(list(stream.checked())).astype(int)
    assert got.shape == expected.shape == (12, 288, 320)
    # The same crop, scale and BT.601 reading of an untagged source; RGB adds rounding.
    assert np.abs(got - expected).mean() < 1.0


def test_a_bt709_source_keeps_its_own_pixels_through_the_yuv_reader(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.25, size=(320, 192), bt709=True)
    with av.open(str(video)) as container:
        source = next(container.decode(video=0))
        assert (source.colorspace, source.color_range) == (1, 1)
        source_pixels = source.to_ndarray().astype(int)
    with FrameReader(video, width=320, height=192, max_seconds=1, pixel_format=YUV420P) as r:
        first = next(iter(r.batches()))[0].astype(int)
    # Same size, same matrix and range: nothing to convert, the decoded planes as they are.
    assert np.array_equal(first, source_pixels)


def test_a_bt709_source_reads_as_bt709_rgb_without_a_shift(tmp_path: Path) -> None:
    size = (320, 192)
    video = make_video(tmp_path / "in.mp4", seconds=0.25, size=size, bt709=True, pattern="gradient")
    with FrameReader(video, width=320, height=192, max_seconds=1) as reader:
        got = next(iter(reader.batches()))[0].astype(int)
    painted = _gradient(size).astype(int)
    # Read as BT.709, the painted picture comes back within rounding and chroma subsampling;
    # read as BT.601 (the buffer source not told the tags), it came back ~3 levels darker.
    assert abs((got - painted).mean()) < 1.5
    assert np.abs(got - painted).mean() < 3.0


def _gradient(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    red = np.arange(width)[None, :] * 255 // (width - 1)
    green = np.arange(height)[:, None] * 255 // (height - 1)
    return np.stack(np.broadcast_arrays(red, green, np.full_like(red, 128)), axis=-1)


def test_a_rotated_video_and_a_still_read_upright_as_yuv(tmp_path: Path) -> None:
    video = _rotated_phone_video(tmp_path / "in.mp4")
    with FrameReader(video, width=240, height=320, max_seconds=1, pixel_format=YUV420P) as r:
        _assert_upright(to_rgb(r.stream()).collect().frames[0])
    still = make_image(tmp_path / "still.png")
    with FrameReader(still, width=64, height=48, max_seconds=1, pixel_format=YUV420P) as r:
        assert r.num_frames == 1 and next(iter(r.batches())).shape == (1, 72, 64)


def test_yuv_frames_need_an_even_size(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.25)
    with pytest.raises(ValueError, match="even"):
        FrameReader(video, width=63, height=48, max_seconds=1, pixel_format=YUV420P)
