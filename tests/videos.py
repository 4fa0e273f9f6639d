"""Test helpers: write small real videos and images with PyAV/Pillow, read them back, inspect them.

Plain functions, not fixtures, so any test (and the benchmark) can make exactly the media it needs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

FramePainter = Callable[[int], np.ndarray]
"""Returns the RGB uint8 (H, W, 3) picture of frame `index`."""

FRAME_INDEX_STEP = 4  # grey levels per frame in the "frame_index" pattern: 64 frames fit
AUDIO_RATE_HZ = 44_100
TONE_HZ = 440.0


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    size: tuple[int, int] = (320, 240),
    fps: float = 24,
    pattern: str | FramePainter = "moving_bars",
    audio: bool = False,
    codec: str = "libx264",
    container_format: str | None = None,
    faststart: bool = True,
    audio_seconds: float | None = None,
    rotation_deg: int = 0,
    bt709: bool = False,
) -> Path:
    """Write `seconds` of `pattern` at `size` (width, height) and `fps`; optionally a sine tone.

    `pattern` is "moving_bars", "gradient", "noise", "frame_index" (solid grey whose level
    is FRAME_INDEX_STEP * frame index, so a decoded frame tells which source frame it shows) or
    a painter. `faststart` puts the MP4 index (moov) before the media data. `bt709` converts
    and tags the pictures as BT.709 limited range, as HD cameras write them (else untagged).
    """
    width, height = size
    paint = pattern if callable(pattern) else _painter(pattern, width, height)
    num_frames = max(1, round(seconds * fps))
    rate = Fraction(fps).limit_denominator(1001)
    is_mp4 = (container_format or path.suffix.lstrip(".")) in {"mp4", "mov", "m4v"}
    options = {"movflags": "+faststart"} if faststart and is_mp4 else {}
    with av.open(str(path), "w", format=container_format, options=options) as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p"
        if codec == "libx264":
            # Small, fast files: tests care about content, not quality.
            video.options = {"preset": "ultrafast", "crf": "18"}
        if rotation_deg:
            video.set_display_rotation(rotation_deg)
        if bt709:
            video.colorspace = video.color_primaries = video.color_trc = 1  # BT.709
            video.color_range = 1  # limited
        sound = container.add_stream("aac", rate=AUDIO_RATE_HZ, layout="mono") if audio else None
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(paint(index), format="rgb24")
            if bt709:
                frame = frame.reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, audio_seconds if audio_seconds is not None else seconds)
    return path


def _write_tone(
    container: Any, sound: Any, seconds: float, rate: int = AUDIO_RATE_HZ, chunk: int = 1024
) -> None:
    total = round(seconds * rate)
    wave = tone(total, rate)  # once: long clips would recompute it per chunk
    for start in range(0, total, chunk):
        samples = np.ascontiguousarray(wave[None, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        container.mux(sound.encode(frame))
    container.mux(sound.encode(None))


def _painter(pattern: str, width: int, height: int) -> FramePainter:
    xs = np.arange(width)[None, :]
    ys = np.arange(height)[:, None]
    if pattern == "moving_bars":
        palette = np.array(
            [[230, 40, 40], [40, 200, 60], [40, 80, 230], [240, 220, 40], [250, 250, 250]],
            dtype=np.uint8,
        )
        bar_px = max(8, width // 8)

        def bars(index: int) -> np.ndarray:
            shift = index * max(2, width // 40)
            band = ((xs + shift) // bar_px) % len(palette)
            return np.ascontiguousarray(np.broadcast_to(palette[band], (height, width, 3)))

        return bars
    if pattern == "gradient":
        red = (xs * 255 // max(1, width - 1)).astype(np.uint8)
        green = (ys * 255 // max(1, height - 1)).astype(np.uint8)
        still = np.stack(np.broadcast_arrays(red, green, np.full_like(red, 128)), axis=-1)
        return lambda index: still.copy()
    if pattern == "noise":

        def noise(index: int) -> np.ndarray:
            rng = np.random.default_rng(index)
            return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)

        return noise
    if pattern == "frame_index":
        return lambda index: np.full(
            (height, width, 3), (FRAME_INDEX_STEP * index) % 256, dtype=np.uint8
        )
    raise ValueError(f"unknown pattern {pattern!r}")


def make_image(path: Path, size: tuple[int, int] = (320, 240), fmt: str = "PNG") -> Path:
    """Write a still gradient image at `size` (width, height) in Pillow format `fmt`."""
    picture = _painter("gradient", *size)(0)
    image = Image.fromarray(picture)
    if fmt.upper() == "GIF":
        image = image.convert("P")
    image.save(path, format=fmt)
    return path


def read_frames(path: Path) -> np.ndarray:
    """Decode every frame of the first video stream to RGB, shaped (T, H, W, 3)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames)


def read_audio(path: Path) -> np.ndarray:
    """Decode the first audio stream to float samples of its first channel."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray()[0] for f in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float32)


def tone(num_samples: int, rate: int = AUDIO_RATE_HZ) -> np.ndarray:
    """The sine that make_video(audio=True) writes, from its first sample."""
    t = np.arange(num_samples) / rate
    return (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def probe_output(path: Path) -> dict[str, Any]:
    """What a client sees in an output file: codec, size, rate, durations and atom order."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        video_packets = [p for p in container.demux(video) if p.size]
        fps = float(video.average_rate) if video.average_rate else 0.0
        return {
            "codec": video.codec_context.name,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "pix_fmt": video.codec_context.pix_fmt,
            "fps": fps,
            "num_frames": len(video_packets),
            "duration_s": _stream_duration_s(video),
            "has_audio": audio is not None,
            "audio_duration_s": _stream_duration_s(audio) if audio is not None else 0.0,
            "faststart": _moov_before_mdat(path),
        }


def _stream_duration_s(stream: Any) -> float:
    if stream.duration is None:
        return 0.0
    return float(stream.duration * stream.time_base)


def _moov_before_mdat(path: Path) -> bool:
    """Walk the MP4's top-level boxes: faststart files put `moov` before `mdat`."""
    order: list[str] = []
    with path.open("rb") as handle:
        while True:
            header = handle.read(8)
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", handle.read(8))[0] - 8
            elif size == 0:
                order.append(kind.decode("latin-1"))
                break
            order.append(kind.decode("latin-1"))
            handle.seek(size - 8, 1)
    return "moov" in order and "mdat" in order and order.index("moov") < order.index("mdat")


def make_damaged_mjpeg(
    path: Path,
    *,
    seconds: float,
    damaged_from_s: float,
    size: tuple[int, int] = (160, 96),
    fps: int = 24,
) -> Path:
    """Motion-JPEG in Matroska whose packets from `damaged_from_s` on for a few frames hold
    random bytes: the file demuxes whole (so the probe takes it) but stops decoding there."""
    width, height = size
    paint = _painter("moving_bars", width, height)
    rng = np.random.default_rng(3)
    first_bad = round(damaged_from_s * fps)
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(paint(index), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in stream.encode(frame):
                if first_bad <= index < first_bad + 3:
                    garbage = av.Packet(bytes(rng.integers(0, 256, packet.size, dtype=np.uint8)))
                    garbage.pts, garbage.dts = packet.pts, packet.dts
                    garbage.time_base, garbage.stream = packet.time_base, stream
                    garbage.is_keyframe = True
                    packet = garbage
                container.mux(packet)
        container.mux(stream.encode(None))
    return path


#: (container format, audio codec) by file suffix, for make_audio
AUDIO_FORMATS = {
    ".wav": ("wav", "pcm_s16le"),
    ".mp3": ("mp3", "libmp3lame"),
    ".flac": ("flac", "flac"),
    ".ogg": ("ogg", "libopus"),
    ".webm": ("webm", "libopus"),
}


def make_audio(path: Path, seconds: float = 1.0) -> Path:
    """An audio-only file of the 440 Hz tone, its format by `path`'s suffix (AUDIO_FORMATS)."""
    fmt, codec = AUDIO_FORMATS[path.suffix]
    rate = 48_000 if codec == "libopus" else AUDIO_RATE_HZ  # Opus runs at 48 kHz
    with av.open(str(path), "w", format=fmt) as container:
        sound = container.add_stream(codec, rate=rate, layout="mono")
        _write_tone(container, sound, seconds, rate, chunk=960)  # 960: Opus's 20 ms frame
    return path
