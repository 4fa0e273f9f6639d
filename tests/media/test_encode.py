"""write_mp4() and write_jpeg(): what a client receives, checked by decoding the files back."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.videos import AUDIO_RATE_HZ, make_video, probe_output, read_audio, read_frames, tone
from vidmorph.media.clip import Clip
from vidmorph.media.decode import read_clip
from vidmorph.media.encode import write_jpeg, write_mp4
from vidmorph.media.pixels import to_yuv


def _bars_clip(width: int, height: int, seconds: float, fps: float = 24.0) -> Clip:
    """Coloured bars sliding right a few pixels per frame."""
    num_frames = round(seconds * fps)
    palette = np.array([[220, 40, 40], [40, 200, 60], [40, 60, 220], [240, 230, 60]], np.uint8)
    xs = np.arange(width)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        frames[index] = palette[((xs + 6 * index) // 40) % len(palette)][None, :, :]
    return Clip(frames=frames, fps=fps)


def test_output_is_h264_yuv420p_at_clip_size_rate_and_duration_with_faststart(
    tmp_path: Path,
) -> None:
    clip = _bars_clip(1280, 768, seconds=1.0)

    write_mp4(clip, tmp_path / "out.mp4")

    info = probe_output(tmp_path / "out.mp4")
    assert (info["codec"], info["pix_fmt"], info["width"], info["height"]) == (
        "h264",
        "yuv420p",
        1280,
        768,
    )
    assert info["fps"] == pytest.approx(24.0)
    assert info["num_frames"] == 24
    assert abs(info["duration_s"] - clip.duration_s) <= 1 / 24
    assert info["faststart"]
    assert not info["has_audio"]


def test_pictures_survive_the_round_trip(tmp_path: Path) -> None:
    clip = _bars_clip(320, 192, seconds=0.5)

    write_mp4(clip, tmp_path / "out.mp4", crf=18)

    decoded = read_frames(tmp_path / "out.mp4").astype(int)
    assert decoded.shape == clip.frames.shape
    # Colours come back (BT.709 written and read); only compression error remains.
    assert np.abs(decoded - clip.frames).mean() < 4


def test_source_audio_is_kept_and_trimmed_to_the_clip(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", seconds=3.0, audio=True)
    clip = read_clip(source, width=320, height=192, max_seconds=2.0)

    write_mp4(clip, tmp_path / "out.mp4", audio_from=source)

    info = probe_output(tmp_path / "out.mp4")
    assert info["has_audio"]
    # AAC codes whole 1024-sample frames: allow one of them (23 ms at 44.1 kHz).
    assert info["audio_duration_s"] == pytest.approx(2.0, abs=0.03)
    assert abs(info["duration_s"] - 2.0) <= 1 / 24
    # It starts where the source starts: the tone is in phase from the first sample.
    head = read_audio(tmp_path / "out.mp4")[: AUDIO_RATE_HZ // 2]
    assert np.sqrt(np.mean((head - tone(len(head))) ** 2)) < 0.05


def test_no_audio_track_when_the_source_has_none(tmp_path: Path) -> None:
    source = make_video(tmp_path / "in.mp4", seconds=0.5)
    clip = read_clip(source, width=320, height=192, max_seconds=2.0)

    write_mp4(clip, tmp_path / "out.mp4", audio_from=source)

    assert not probe_output(tmp_path / "out.mp4")["has_audio"]


def test_identical_input_gives_identical_bytes(tmp_path: Path) -> None:
    # The case x264 once made irreproducible (2-3 runs in 100): a short, small clip encoded
    # while another thread of the process allocates and computes.
    clip = _bars_clip(320, 192, seconds=0.5)
    stop = threading.Event()

    def busy() -> None:
        rng = np.random.default_rng(0)
        while not stop.is_set():
            values = rng.random((200, 200))
            _ = [bytearray(int(size)) for size in rng.integers(1, 100_000, 20)] + [values @ values]

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        outputs = set()
        for _ in range(40):
            write_mp4(clip, tmp_path / "out.mp4")
            outputs.add((tmp_path / "out.mp4").read_bytes())
    finally:
        stop.set()
        worker.join()
    assert len(outputs) == 1


def test_progress_rises_to_one(tmp_path: Path) -> None:
    seen: list[float] = []

    write_mp4(_bars_clip(64, 48, seconds=1.0), tmp_path / "out.mp4", on_progress=seen.append)

    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 2


def test_odd_sizes_are_refused_before_encoding(tmp_path: Path) -> None:
    clip = Clip(frames=np.zeros((2, 47, 64, 3), dtype=np.uint8), fps=24.0)

    with pytest.raises(ValueError, match="even"):
        write_mp4(clip, tmp_path / "out.mp4")


def test_jpeg_preview_is_scaled_down_to_max_width(tmp_path: Path) -> None:
    frame = _bars_clip(1280, 768, seconds=1 / 24).frames[0]

    write_jpeg(frame, tmp_path / "preview.jpg", max_width=640)

    with Image.open(tmp_path / "preview.jpg") as preview:
        assert (preview.format, preview.size) == ("JPEG", (640, 384))


def test_jpeg_preview_keeps_small_frames_at_their_size(tmp_path: Path) -> None:
    frame = np.full((100, 160, 3), 200, dtype=np.uint8)

    write_jpeg(frame, tmp_path / "preview.jpg")

    with Image.open(tmp_path / "preview.jpg") as preview:
        assert preview.size == (160, 100)
        assert np.abs(np.asarray(preview).astype(int) - 200).max() <= 2


def test_a_yuv_stream_is_encoded_as_it_is(tmp_path: Path) -> None:
    clip = _bars_clip(320, 192, seconds=0.5)
    yuv = to_yuv(clip.stream())

    write_mp4(yuv, tmp_path / "yuv.mp4", crf=18)
    write_mp4(clip, tmp_path / "rgb.mp4", crf=18)

    info = probe_output(tmp_path / "yuv.mp4")
    assert (info["pix_fmt"], info["width"], info["height"], info["num_frames"]) == (
        "yuv420p", 320, 192, 12,
    )  # fmt: skip
    decoded = read_frames(tmp_path / "yuv.mp4").astype(int)
    assert np.abs(decoded - clip.frames).mean() < 4
    # The RGB stream is converted the same way on its way in: the same pictures come out.
    assert np.abs(decoded - read_frames(tmp_path / "rgb.mp4")).mean() < 1
    with av.open(str(tmp_path / "yuv.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.colorspace, frame.color_range) == (1, 1)  # BT.709, limited range
