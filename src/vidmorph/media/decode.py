"""Decoding uploads into frames: the first video stream, upright, center-cropped to the output
aspect ratio, scaled, resampled to a fixed frame rate by timestamp and trimmed.

`FrameReader` streams the frames in batches (a task's media path); `read_clip` collects them
into one `Clip` (previews, tests).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.filter import Graph
from av.video.stream import VideoStream

from vidmorph.errors import InvalidMedia
from vidmorph.media import pixels
from vidmorph.media.clip import BATCH_FRAMES, RGB24, YUV420P, Clip, ClipStream, Frames, frame_shape
from vidmorph.media.probe import open_media, probe

ProgressFn = Callable[[float], None]

SCALER = "bicubic"
# Float seconds from pts * time_base carry rounding noise; a frame this close to an output
# instant counts as on screen at it.
_TIME_EPSILON_S = 1e-4
_PROGRESS_EVERY_FRAMES = 8
_MAX_IN_FLIGHT = 4  # pieces of frames (each within one batch) waiting for the converter
# YUV sources are scaled in their own format and only then turned into RGB: scaling straight
# to RGB makes swscale take its slow full-chroma path (about 4x the cost at 1080p).
_YUV_PREFIXES = ("yuv", "nv")
# Rotation flags as FFmpeg's own autorotate undoes them (VideoFrame.rotation is CCW degrees).
_UPRIGHT_FILTERS: dict[int, tuple[tuple[str, str | None], ...]] = {
    -90: (("transpose", "clock"),),
    90: (("transpose", "cclock"),),
    180: (("hflip", None), ("vflip", None)),
}


def read_clip(
    path: Path,
    *,
    width: int,
    height: int,
    fps: float = 24.0,
    max_seconds: float,
    duration_s: float | None = None,
    on_progress: ProgressFn | None = None,
    max_pixels: int | None = None,
) -> Clip:
    """The whole of `path` as one `Clip` (see `FrameReader`); for short clips and previews."""
    with FrameReader(
        path,
        width=width,
        height=height,
        fps=fps,
        max_seconds=max_seconds,
        duration_s=duration_s,
        on_progress=on_progress,
        max_pixels=max_pixels,
    ) as reader:
        return reader.stream().collect()


class FrameReader:
    """Decodes `path` into exactly `width` x `height` frames at `fps`, a batch at a time, in
    `pixel_format`: RGB, or the encoder's BT.709 limited-range YUV420P (no RGB conversion).

    Output frame i shows the source frame on screen at i / fps (the latest one whose timestamp
    is <= that instant). The clip lasts min(max_seconds, source duration), so it holds
    round(duration * fps) frames, at least one; a still image gives one frame. The count is
    known on opening (`num_frames`): from `duration_s`, the probe's measure of the file when the
    caller has it (an asset's metadata), else from the video stream's header, else from probing
    the file (one pass over its packets). A
    source that ends early repeats its last frame to the count; one that fails to decode
    after good frames raises `InvalidMedia` saying where (the probe let it in, so the bytes
    are damaged inside). `max_pixels` makes the decoder refuse frames above that area.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        fps: float = 24.0,
        max_seconds: float,
        duration_s: float | None = None,
        batch_frames: int = BATCH_FRAMES,
        max_pixels: int | None = None,
        pixel_format: str = RGB24,
        on_progress: ProgressFn | None = None,
    ) -> None:
        if width <= 0 or height <= 0 or fps <= 0 or max_seconds <= 0 or batch_frames <= 0:
            raise ValueError("width, height, fps, max_seconds and batch_frames must be positive")
        frame_shape(pixel_format, width, height)  # a known format that fits the size
        self.width, self.height, self.fps = width, height, fps
        self.pixel_format = pixel_format
        self.batch_frames, self.on_progress = batch_frames, on_progress
        self._container = open_media(path)
        try:
            if not self._container.streams.video:
                raise InvalidMedia("The file has no video stream.")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"  # frame + slice threads: decoding dominates
            if max_pixels is not None:
                self._stream.codec_context.options = {"max_pixels": str(max_pixels)}
            # The video's own duration as the probe measures it (never the container's,
            # which may be its audio's, far past the last frame).
            if duration_s is None:
                duration_s = _stream_duration_s(self._stream) or probe(path).duration_s
            limit_s = min(max_seconds, duration_s) if duration_s else 1 / fps
            self.num_frames = _num_frames(limit_s, fps)
        except BaseException:
            self._container.close()
            raise

    def stream(self) -> ClipStream:
        size = (self.num_frames, self.width, self.height, self.fps)
        return ClipStream(self.batches(), *size, self.pixel_format)

    def batches(self) -> Iterator[Frames]:
        """The frames in fresh batches of `batch_frames` (the last may be shorter)."""
        sink = _FrameSink(
            self.num_frames, self.width, self.height, self.fps, self.batch_frames, self.pixel_format
        )
        try:
            try:
                decoded = self._container.decode(self._stream)
            except av.FFmpegError as error:  # the decoder would not open: max_pixels, codec
                raise InvalidMedia("The video could not be decoded.") from error
            for frame in _decoded(decoded, sink):
                more = sink.offer(frame)
                yield from sink.pump()
                self._report(sink)
                if not more:
                    break
            sink.finish()
            yield from sink.pump(final=True)
            if self.on_progress is not None:
                self.on_progress(1.0)
        finally:
            sink.close()

    def _report(self, sink: _FrameSink) -> None:
        if self.on_progress is not None and sink.placed_progress():
            self.on_progress(sink.filled / self.num_frames)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decoded(decoded: Iterator[av.VideoFrame], sink: _FrameSink) -> Iterator[av.VideoFrame]:
    """The decoder's frames; an error before any frame is unreadable media, one after good
    frames is damage at that point of the file."""
    while True:
        try:
            frame = next(decoded)
        except StopIteration:
            return
        except av.FFmpegError as error:
            if sink.pending is None:
                raise InvalidMedia("The video could not be decoded.") from error
            raise InvalidMedia(
                f"The video is damaged at {sink.pending_s + sink.frame_step_s:.1f} s: it does not"
                " decode past there."
            ) from error
        yield frame


def _num_frames(duration_s: float, fps: float) -> int:
    return max(1, round(duration_s * fps))


def _stream_duration_s(stream: VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


@dataclass
class _Geometry:
    """Where the output comes from: the upright source size and the centered crop box."""

    rotation_deg: int
    upright_w: int
    upright_h: int
    crop_w: int
    crop_h: int

    @classmethod
    def of(cls, frame: av.VideoFrame, width: int, height: int) -> _Geometry:
        rotation_deg = _normalized_rotation(frame.rotation)
        src_w, src_h = frame.width, frame.height
        if abs(rotation_deg) == 90:
            src_w, src_h = src_h, src_w
        # Crop the longer side (relative to the target aspect) symmetrically.
        if src_w * height > src_h * width:
            crop_w, crop_h = min(src_w, max(1, round(src_h * width / height))), src_h
        else:
            crop_w, crop_h = src_w, min(src_h, max(1, round(src_w * height / width)))
        return cls(rotation_deg, src_w, src_h, crop_w, crop_h)


def _normalized_rotation(rotation_deg: int) -> int:
    """-90, 0, 90 or 180: the nearest quarter turn, with 270 as -90."""
    quarter = round(rotation_deg / 90) % 4
    return {0: 0, 1: 90, 2: 180, 3: -90}[quarter]


def _build_graph(frame: av.VideoFrame, width: int, height: int, pixel_format: str) -> Graph:
    """Filters that rotate upright, crop the center, scale and convert to `pixel_format`.

    YUV420P output is BT.709 limited range, as the encoder tags it; a source in another matrix
    or range (or untagged, which swscale reads as BT.601, as it does for RGB) is converted in
    the one scaling pass. Output frames come from the graph's frame pool, so no per-frame
    allocation (on this kind of VM, fresh pages cost more than the conversion itself).
    """
    geometry = _Geometry.of(frame, width, height)
    graph = Graph()
    nodes = [graph.add("buffer", _buffer_args(frame))]
    for name, args in _UPRIGHT_FILTERS.get(geometry.rotation_deg, ()):
        nodes.append(graph.add(name, args))
    x = (geometry.upright_w - geometry.crop_w) // 2
    y = (geometry.upright_h - geometry.crop_h) // 2
    nodes.append(graph.add("crop", f"{geometry.crop_w}:{geometry.crop_h}:{x}:{y}:exact=1"))
    if pixel_format == YUV420P:
        matrix = f"out_color_matrix={pixels.COLOR_MATRIX}:out_range={pixels.COLOR_RANGE}"
        nodes.append(graph.add("scale", f"{width}:{height}:flags={SCALER}:{matrix}"))
    else:
        nodes.append(graph.add("scale", f"{width}:{height}:flags={SCALER}"))
        if frame.format.name.startswith(_YUV_PREFIXES):
            nodes.append(graph.add("format", frame.format.name))
            nodes.append(graph.add("scale", f"flags={SCALER}"))
    nodes.append(graph.add("format", pixel_format))
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    return graph


#: colour matrices FFmpeg's buffer source takes by number (AVColorSpace); others read as unset
_COLORSPACES = frozenset({1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})


def _buffer_args(frame: av.VideoFrame) -> str:
    """The graph's source, described as the decoder's frames are, colour tags included.

    Untold, the buffer source calls its frames untagged, and the scaler that only resizes them
    (ahead of the RGB conversion) then converts a BT.709 source to BT.601 on the way: the RGB
    reader's picture came out about 3 levels darker than the source's own. An untagged or
    reserved matrix or range is left out, so swscale's default (BT.601, limited) applies.
    """
    time_base = frame.time_base or Fraction(1, 1000)
    args = [
        f"video_size={frame.width}x{frame.height}",
        f"pix_fmt={frame.format.name}",
        f"time_base={time_base.numerator}/{time_base.denominator}",
        "pixel_aspect=1/1",
    ]
    if frame.colorspace in _COLORSPACES:
        args.append(f"colorspace={frame.colorspace}")
    if frame.color_range in (1, 2):
        args.append(f"range={frame.color_range}")
    return ":".join(args)


class _FrameSink:
    """Places decoded frames into the output slots whose instants they are on screen for, and
    hands the slots on in batches as they fill.

    A converter thread scales and copies (both release the GIL) while the decoder works on the
    next packet; one thread keeps the filter graph in order. A frame on screen for many slots
    (a still, a gap in the timestamps, a source that ends early) is placed a batch at a time,
    so memory holds a few batches whatever the span. Batches are fresh arrays: the consumer
    may keep one while the next fills.
    """

    def __init__(
        self, capacity: int, width: int, height: int, fps: float, batch: int, pixel_format: str
    ) -> None:
        self.capacity, self.batch = capacity, batch
        self.width, self.height, self.fps = width, height, fps
        self.pixel_format = pixel_format
        self.shape = frame_shape(pixel_format, width, height)
        self.filled = 0  # slots given a frame (their pixels may still be converting)
        self.written = 0  # slots whose pixels are in place
        self.pending: av.VideoFrame | None = None  # latest decoded frame, not yet placed
        self.pending_s = 0.0
        self.origin_s: float | None = None
        self.frame_step_s = 0.0  # how long the last frame stays on screen
        self._batches: dict[int, Frames] = {}  # batch index -> array, written by the converter
        self._next_batch = 0
        self._last_report = 0
        self._graph: Graph | None = None
        self._graph_key: tuple[int, int, str, int] | None = None
        self._converter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidmorph-scale")
        self._in_flight: deque[Future[int]] = deque()
        #: (frame, first slot, end slot, keep its pixels for the next piece, reuse the kept ones)
        self._todo: deque[tuple[av.VideoFrame, int, int, bool, bool]] = deque()
        self._kept: Frames | None = None  # a converted frame spanning several batches

    def close(self) -> None:
        self._converter.shutdown(wait=True, cancel_futures=True)
        self._batches.clear()

    def offer(self, frame: av.VideoFrame) -> bool:
        """Take the next decoded frame; False once every output slot is decided."""
        time_s = frame.time if frame.pts is not None else self.pending_s + self.frame_step_s
        if self.origin_s is None:
            self.origin_s = time_s
        time_s -= self.origin_s
        if self.pending is not None:
            if time_s > self.pending_s:
                self.frame_step_s = time_s - self.pending_s
            self._place_until(time_s)
        if self.filled >= self.capacity:
            return False
        self.pending, self.pending_s = frame, time_s
        return True

    def finish(self) -> None:
        """Give the remaining slots to the last frame (`pump(final=True)` writes them)."""
        if self.pending is None:
            raise InvalidMedia("The video has no decodable frames.")
        self._place_until(float("inf"))

    def pump(self, *, final: bool = False) -> Iterator[Frames]:
        """Convert what was placed, at most `_MAX_IN_FLIGHT` pieces at a time, handing batches
        on as they complete; `final` waits for every piece."""
        while self._todo or (final and self._in_flight):
            if self._todo and len(self._in_flight) < _MAX_IN_FLIGHT:
                self._in_flight.append(self._converter.submit(self._convert, *self._todo.popleft()))
                continue
            self._collect()
            yield from self.ready()
        while self._in_flight and self._in_flight[0].done():
            self._collect()
        yield from self.ready()

    def ready(self) -> Iterator[Frames]:
        """Batches whose every slot is written, in order; each is handed on once."""
        while True:
            start = self._next_batch * self.batch
            stop = min(start + self.batch, self.capacity)
            if start >= self.capacity or self.written < stop:
                return
            batch = self._batches.pop(self._next_batch)
            self._next_batch += 1
            yield batch

    def placed_progress(self) -> bool:
        """Whether enough slots filled since the last report to report again."""
        if self.filled // _PROGRESS_EVERY_FRAMES == self._last_report // _PROGRESS_EVERY_FRAMES:
            return False
        self._last_report = self.filled
        return True

    def _place_until(self, next_s: float) -> None:
        """Give the pending frame every slot whose instant falls before `next_s`, as pieces
        that each stay within one batch."""
        first = self.filled
        while self.filled < self.capacity and self.filled / self.fps + _TIME_EPSILON_S < next_s:
            self.filled += 1
        if self.filled == first or self.pending is None:
            return
        start, pieces = first, []
        while start < self.filled:
            stop = min(self.filled, (start // self.batch + 1) * self.batch)
            pieces.append((start, stop))
            start = stop
        many = len(pieces) > 1
        for index, (start, stop) in enumerate(pieces):
            self._todo.append((self.pending, start, stop, many and index == 0, index > 0))

    def _collect(self) -> None:
        self.written = self._in_flight.popleft().result()

    def _convert(self, frame: av.VideoFrame, first: int, end: int, keep: bool, reuse: bool) -> int:
        """Slots [first, end) all show `frame`: convert it once (or take the pixels kept from its
        previous piece), copy it into each."""
        done: Frames | None = self._kept if reuse else None
        for slot in range(first, end):
            index, offset = divmod(slot, self.batch)
            target = self._slots(index)[offset]
            if done is None:
                self._write(frame, target)  # converted straight into its first slot
                done = target
            else:
                target[:] = done
        if not reuse:
            self._kept = None if done is None or not keep else done.copy()
        return end

    def _slots(self, index: int) -> Frames:
        batch = self._batches.get(index)
        if batch is None:
            size = min(self.batch, self.capacity - index * self.batch)
            batch = np.empty((size, *self.shape), dtype=np.uint8)
            self._batches[index] = batch
        return batch

    def _write(self, frame: av.VideoFrame, target: Frames) -> None:
        key = (frame.width, frame.height, frame.format.name, frame.rotation)
        if self._graph is None or key != self._graph_key:
            # Built from the first frame, rebuilt if a stream changes size or format midway.
            self._graph = _build_graph(frame, self.width, self.height, self.pixel_format)
            self._graph_key = key
        self._graph.vpush(frame)
        pixels.copy_planes(self._graph.vpull(), target)
