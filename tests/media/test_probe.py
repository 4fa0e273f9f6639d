"""probe(): what it reports for real videos and images, and every kind of file it refuses."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.videos import make_image, make_video
from vidmorph.errors import InvalidMedia
from vidmorph.media.probe import MediaInfo, probe


def _truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def _refusal(path: Path) -> str:
    with pytest.raises(InvalidMedia) as caught:
        probe(path)
    assert caught.value.status == 400
    return caught.value.public_message


def test_video_fields_are_reported(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=2.0, size=(320, 240), fps=30)

    info = probe(video)

    assert info == MediaInfo(
        media_type="video",
        duration_s=pytest.approx(2.0, abs=0.05),
        fps=pytest.approx(30.0),
        width=320,
        height=240,
        has_audio=False,
        has_alpha=False,
        codec="h264",
        size_bytes=video.stat().st_size,
        container="mov",
        brand="isom",  # what FFmpeg's mp4 muxer writes
    )


def test_audio_track_is_reported(tmp_path: Path) -> None:
    info = probe(make_video(tmp_path / "in.mp4", seconds=1.0, audio=True))

    assert info.has_audio
    assert info.duration_s == pytest.approx(1.0, abs=0.05)


def test_rotated_video_reports_its_displayed_size(tmp_path: Path) -> None:
    info = probe(make_video(tmp_path / "in.mp4", seconds=0.5, size=(320, 240), rotation_deg=90))

    assert (info.width, info.height) == (240, 320)


def test_matroska_video_is_accepted(tmp_path: Path) -> None:
    info = probe(make_video(tmp_path / "in.mkv", seconds=1.0, container_format="matroska"))

    assert info.media_type == "video"
    assert info.duration_s == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(("fmt", "codec"), [("PNG", "png"), ("JPEG", "mjpeg"), ("GIF", "gif")])
def test_still_images_probe_as_images(tmp_path: Path, fmt: str, codec: str) -> None:
    info = probe(make_image(tmp_path / f"in.{fmt.lower()}", (200, 120), fmt))

    assert (info.media_type, info.codec, info.width, info.height) == ("image", codec, 200, 120)
    assert (info.duration_s, info.fps, info.has_audio) == (0.0, 0.0, False)


def test_animated_gif_probes_as_a_video_with_its_duration(tmp_path: Path) -> None:
    pictures = [Image.fromarray(np.full((60, 80, 3), 40 * i, np.uint8)) for i in range(5)]
    pictures[0].save(tmp_path / "anim.gif", save_all=True, append_images=pictures[1:], duration=100)

    info = probe(tmp_path / "anim.gif")

    assert (info.media_type, info.codec) == ("video", "gif")
    assert info.duration_s == pytest.approx(0.5)


def test_transparent_png_has_alpha_and_opaque_gif_does_not(tmp_path: Path) -> None:
    rgba = np.zeros((50, 60, 4), dtype=np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba).save(tmp_path / "see-through.png")

    assert probe(tmp_path / "see-through.png").has_alpha
    assert not probe(make_image(tmp_path / "opaque.gif", (60, 50), "GIF")).has_alpha


def test_empty_file_is_rejected_as_invalid_media(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")

    assert _refusal(tmp_path / "empty.mp4") == "The file is empty."


def test_random_bytes_are_rejected_as_invalid_media(tmp_path: Path) -> None:
    noise = np.random.default_rng(7).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    (tmp_path / "noise.mp4").write_bytes(noise)

    assert _refusal(tmp_path / "noise.mp4") == "The file is not a readable video or image."


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4"])
def test_text_file_is_rejected_as_invalid_media(tmp_path: Path, name: str) -> None:
    # FFmpeg's "tty" demuxer would read any .txt file as an ANSI-art video.
    (tmp_path / name).write_text("this is not a video\n" * 40)

    assert _refusal(tmp_path / name) == "The file is not a readable video or image."


def test_playlist_pointing_at_other_files_is_rejected(tmp_path: Path) -> None:
    make_video(tmp_path / "inner.mp4", seconds=0.5)
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ninner.mp4\n#EXT-X-ENDLIST\n"
    (tmp_path / "list.m3u8").write_text(playlist)

    assert _refusal(tmp_path / "list.m3u8") == "The file is not a readable video or image."


def test_audio_only_file_is_rejected_as_invalid_media(tmp_path: Path) -> None:
    video_with_sound = make_video(tmp_path / "both.mp4", seconds=0.5, audio=True)

    with av.open(str(video_with_sound)) as source, av.open(str(tmp_path / "a.m4a"), "w") as sink:
        audio_in = source.streams.audio[0]
        audio_out = sink.add_stream_from_template(audio_in)
        for packet in source.demux(audio_in):
            if packet.dts is not None:
                packet.stream = audio_out
                sink.mux(packet)

    assert _refusal(tmp_path / "a.m4a") == "The file has no video stream."


def test_mp4_with_damaged_header_is_rejected_as_invalid_media(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.5)
    data = bytearray(video.read_bytes())
    data[:64] = bytes(range(64))
    video.write_bytes(bytes(data))

    assert "video" in _refusal(video)


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_truncated_mp4_with_index_at_end_is_rejected_as_invalid_media(
    tmp_path: Path, fraction: float
) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=1.0, pattern="noise", faststart=False)

    assert _refusal(_truncate(video, fraction)) == "The video is truncated or corrupt."


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_truncated_faststart_mp4_is_rejected_as_invalid_media(
    tmp_path: Path, fraction: float
) -> None:
    # The index (moov) is whole, so the file opens; the missing packets give it away.
    video = make_video(tmp_path / "in.mp4", seconds=1.0, pattern="noise", audio=True)

    assert _refusal(_truncate(video, fraction)) == "The video is truncated or corrupt."


def test_an_mp4_cut_anywhere_in_its_index_is_invalid_media_or_whole(tmp_path: Path) -> None:
    # Cut inside the moov at the end, some cuts leave a stream with no codec at all. A cut in
    # its last boxes (the audio track's, the tags) may leave a whole video: taken as one.
    video = make_video(
        tmp_path / "in.mp4", seconds=2.0, size=(640, 360), faststart=False, audio=True
    )
    data = video.read_bytes()
    moov = data.rindex(b"moov") - 4
    cut = tmp_path / "cut.mp4"
    refused = 0
    for end in range(moov, len(data), 3):
        cut.write_bytes(data[:end])
        try:
            info = probe(cut, max_pixels=10**8)
        except InvalidMedia:
            refused += 1
        else:
            assert info.duration_s > 1.9 and info.width == 640
    assert refused > (len(data) - moov) // 6


def test_truncated_matroska_is_rejected_as_invalid_media(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mkv", seconds=1.0, pattern="noise")

    assert _refusal(_truncate(video, 0.8)) == "The video is truncated or corrupt."


def test_video_with_no_decodable_frames_is_rejected_as_invalid_media(tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.5, pattern="noise")
    data = bytearray(video.read_bytes())
    start = data.find(b"mdat") + 4
    size = int.from_bytes(data[start - 8 : start - 4], "big")
    data[start : start - 8 + size] = bytes(size - 8)  # every packet's payload zeroed
    video.write_bytes(bytes(data))

    assert _refusal(video) == "The video has no decodable frames."


def _huge_png(path: Path, *, damaged: bool) -> Path:
    """A 16000x16000 one-bit PNG: a few dozen KB on disk, 768 MB once decoded to RGB."""
    Image.new("1", (16000, 16000)).save(path)
    if damaged:  # a decode would fail on this; a header check never reads it
        data = bytearray(path.read_bytes())
        start = data.index(b"IDAT") + 4
        data[start : start + 64] = bytes(range(64))
        path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damaged", [False, True])
def test_frames_above_the_pixel_limit_are_refused_from_the_header(
    tmp_path: Path, damaged: bool
) -> None:
    huge = _huge_png(tmp_path / "huge.png", damaged=damaged)
    with pytest.raises(InvalidMedia) as caught:
        probe(huge, max_pixels=4096 * 2304)
    assert caught.value.status == 400
    assert caught.value.public_message == (
        "The frames are 16000x16000 (256.0 megapixels); this server takes at most "
        "9.4 megapixels per frame."
    )


def test_a_video_at_the_pixel_limit_is_taken_and_one_pixel_row_over_is_not(
    tmp_path: Path,
) -> None:
    video = make_video(tmp_path / "in.mp4", seconds=0.5, size=(320, 240))
    assert probe(video, max_pixels=320 * 240).width == 320
    with pytest.raises(InvalidMedia, match="320x240"):
        probe(video, max_pixels=320 * 239)


def _streams(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """A Matroska file with one short video stream of each size."""
    with av.open(str(path), "w") as container:
        streams = []
        for width, height in sizes:
            stream = container.add_stream("libx264", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            streams.append(stream)
        for stream in streams:
            picture = np.zeros((stream.height, stream.width, 3), np.uint8)
            for _ in range(2):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            container.mux(stream.encode(None))
    return path


def test_every_video_stream_is_held_to_the_pixel_limit_and_streams_are_few(
    tmp_path: Path,
) -> None:
    small_first = _streams(tmp_path / "two.mkv", [(64, 48), (1280, 720)])
    with pytest.raises(InvalidMedia, match="1280x720"):
        probe(small_first, max_pixels=640 * 480)
    assert probe(small_first, max_pixels=1280 * 720).width == 64
    many = _streams(tmp_path / "many.mkv", [(32, 32)] * 17)
    with pytest.raises(InvalidMedia, match="17 streams"):
        probe(many)
    assert probe(_streams(tmp_path / "some.mkv", [(32, 32)] * 16)).width == 32
