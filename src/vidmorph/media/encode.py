"""Encoding results: a clip (a `ClipStream` as it arrives, or a whole `Clip`) to an H.264
yuv420p faststart MP4, with the source's audio trimmed to it when it has any; a frame to a
JPEG preview.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream
from PIL import Image

from vidmorph.media import pixels
from vidmorph.media.clip import RGB24, YUV420P, Clip, ClipStream, Frames
from vidmorph.media.probe import open_media

ProgressFn = Callable[[float], None]

AUDIO_BIT_RATE = 128_000
# Rates the AAC encoder takes as they are; anything else is resampled to 48 kHz.
_AAC_RATES_HZ = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
_PROGRESS_EVERY_FRAMES = 8
_CONVERT_AHEAD = 4  # frames converted to YUV ahead of the encoder
# x264's macroblock tree gave different bytes from run to run for a 12-frame 320x192 clip while
# other threads of the process worked (2-3 runs in 100, even with one x264 thread; never seen at
# 1 s of 320x192 or at 0.5 s of 640x384 or 1280x768). Clips under one second of 640x384 go
# without it: reproducible, and too short for the tree to save much.
_NO_MBTREE_BELOW_PIXELS = 24 * 640 * 384


def write_mp4(
    clip: Clip | ClipStream,
    path: Path,
    *,
    audio_from: Path | None = None,
    crf: int = 20,
    preset: str = "veryfast",
    on_progress: ProgressFn | None = None,
) -> None:
    """Encode `clip` to `path`: H.264 yuv420p at the clip's size and fps, moov first.

    A stream is encoded as its batches arrive, so memory holds a few frames, not the clip.
    YUV420P frames go to x264 as they are; RGB ones are converted on a helper thread.
    When `audio_from` has an audio stream, its first `clip.duration_s` seconds (from the
    start of its video) are re-encoded to AAC alongside.
    """
    stream = clip.stream() if isinstance(clip, Clip) else clip
    if stream.width % 2 or stream.height % 2:
        raise ValueError(f"H.264 yuv420p needs even sizes, got {stream.width}x{stream.height}")
    rate = Fraction(stream.fps).limit_denominator(1001)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        video = _add_video_stream(output, stream, rate, crf=crf, preset=preset)
        audio = _AudioCopier.open(audio_from, output, stream.duration_s) if audio_from else None
        try:
            for index, frame in enumerate(_yuv_frames(stream, rate)):
                if audio is not None:
                    audio.copy_until((index + 1) / stream.fps)
                output.mux(video.encode(frame))
                if on_progress is not None and (index + 1) % _PROGRESS_EVERY_FRAMES == 0:
                    on_progress((index + 1) / stream.num_frames)
            output.mux(video.encode(None))
            if audio is not None:
                audio.copy_until(stream.duration_s)
                audio.flush()
        finally:
            if audio is not None:
                audio.close()
    if on_progress is not None:
        on_progress(1.0)


def _add_video_stream(
    output: OutputContainer, clip: ClipStream, rate: Fraction, *, crf: int, preset: str
) -> VideoStream:
    video = output.add_stream("libx264", rate=rate)
    video.width, video.height = clip.width, clip.height
    video.pix_fmt = "yuv420p"
    video.codec_context.time_base = 1 / rate
    # Frame threads, as many as x264 picks for the cores (PyAV's default is slice threads,
    # which x264 runs less efficiently).
    video.thread_type = "AUTO"
    video.thread_count = 0
    video.options = {"crf": str(crf), "preset": preset}
    if clip.num_frames * clip.width * clip.height < _NO_MBTREE_BELOW_PIXELS:
        video.options = {**video.options, "x264-params": "mbtree=0"}
    # BT.709 (the HD matrix, primaries and transfer) in limited range, written into the stream
    # so players do not guess BT.601 for a 1280x768 picture.
    video.color_primaries = video.color_trc = video.colorspace = pixels.BT709
    video.color_range = pixels.LIMITED_RANGE
    return video


def _yuv_frames(clip: ClipStream, rate: Fraction) -> Iterator[av.VideoFrame]:
    """The clip's frames as yuv420p: YUV420P arrays wrapped in place (x264 copies its input),
    RGB ones converted on a helper thread a few frames ahead of the encoder (the conversion
    releases the GIL, so it overlaps with x264's own threads)."""
    if clip.pixel_format == YUV420P:
        for index, frame in enumerate(clip.frames()):
            wrapped = pixels.av_frame(frame, YUV420P)
            wrapped.pts = index
            yield wrapped
        return
    graph = pixels.conversion_graph(RGB24, YUV420P, clip.width, clip.height, 1 / rate)

    def convert(index: int, frame: Frames) -> av.VideoFrame:
        # from_numpy_buffer wraps the array without copying; the conversion is the one copy.
        rgb = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame), format="rgb24")
        rgb.pts = index
        graph.vpush(rgb)
        return graph.vpull()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidmorph-yuv") as converter:
        ahead: deque[Future[av.VideoFrame]] = deque()
        for index, frame in enumerate(clip.frames()):
            ahead.append(converter.submit(convert, index, frame))
            if len(ahead) > _CONVERT_AHEAD:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


class _AudioCopier:
    """Streams the source's audio into the output, trimmed to [0, duration) of the clip."""

    def __init__(self, source: InputContainer, output: OutputContainer, duration_s: float) -> None:
        in_stream = source.streams.audio[0]
        rate_hz = in_stream.rate if in_stream.rate in _AAC_RATES_HZ else 48_000
        layout = "mono" if in_stream.channels == 1 else "stereo"
        self.source = source
        self.stream = output.add_stream("aac", rate=rate_hz, layout=layout)
        self.stream.bit_rate = AUDIO_BIT_RATE
        self.output = output
        self.rate_hz = rate_hz
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate_hz)
        self.total_samples = round(duration_s * rate_hz)
        self.exhausted = False
        self.position: int | None = None  # sample index, relative to clip start, of the next input
        # The clip starts where the source's video starts; audio before that is cut.
        self.origin_s = _video_start_s(source)
        self.frames: Iterator[av.AudioFrame] = source.decode(in_stream)

    @classmethod
    def open(cls, path: Path, output: OutputContainer, duration_s: float) -> _AudioCopier | None:
        source = open_media(path)
        if not source.streams.audio:
            source.close()
            return None
        return cls(source, output, duration_s)

    def copy_until(self, time_s: float) -> None:
        """Mux source audio up to `time_s` seconds of the clip."""
        target = min(self.total_samples, round(time_s * self.rate_hz))
        while not self.exhausted and (self.position is None or self.position < target):
            try:
                frame: av.AudioFrame | None = next(self.frames)
            except (StopIteration, av.FFmpegError):
                frame = None  # the end; a damaged soundtrack also just ends: keep the video
            if frame is None:
                self.exhausted = True
            for resampled in self.resampler.resample(frame):
                self._mux(resampled)

    def _mux(self, frame: av.AudioFrame) -> None:
        if self.position is None:
            start_s = frame.time if frame.time is not None else self.origin_s
            self.position = round((start_s - self.origin_s) * self.rate_hz)
        start, self.position = self.position, self.position + frame.samples
        keep_from = max(0, -start)
        keep_to = min(frame.samples, self.total_samples - start)
        if keep_to <= keep_from:
            return
        samples = frame.to_ndarray().astype(np.float32, copy=False)[:, keep_from:keep_to]
        trimmed = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=frame.layout.name
        )
        trimmed.sample_rate = self.rate_hz
        trimmed.pts = start + keep_from
        trimmed.time_base = Fraction(1, self.rate_hz)
        self.output.mux(self.stream.encode(trimmed))

    def flush(self) -> None:
        self.output.mux(self.stream.encode(None))

    def close(self) -> None:
        self.source.close()


def _video_start_s(source: InputContainer) -> float:
    if not source.streams.video:
        return 0.0
    video = source.streams.video[0]
    if video.start_time is None or video.time_base is None:
        return 0.0
    return float(video.start_time * video.time_base)


def write_jpeg(frame: Frames, path: Path, *, max_width: int = 640, quality: int = 85) -> None:
    """Save one RGB (H, W, 3) frame as a JPEG preview no wider than `max_width`."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"A preview frame must be uint8 (H, W, 3), got {frame.shape}")
    image = Image.fromarray(frame)
    if image.width > max_width:
        height = max(1, round(image.height * max_width / image.width))
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    image.save(path, format="JPEG", quality=quality)
