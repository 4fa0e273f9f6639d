"""Decoding uploads into a `Clip`: the first video stream, upright, center-cropped to the output
aspect ratio, scaled, resampled to a fixed frame rate by timestamp and trimmed.
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
from vidmorph.media.clip import Clip, Frames
from vidmorph.media.probe import open_media

ProgressFn = Callable[[float], None]

SCALER = "bicubic"
# Float seconds from pts * time_base carry rounding noise; a frame this close to an output
# instant counts as on screen at it.
_TIME_EPSILON_S = 1e-4
_PROGRESS_EVERY_FRAMES = 8
_MAX_IN_FLIGHT = 4  # decoded frames waiting for the converter thread
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
    on_progress: ProgressFn | None = None,
) -> Clip:
    """Decode `path` into exactly `width` x `height` RGB frames at `fps`.

    Output frame i shows the source frame on screen at i / fps (the latest one whose
    timestamp is <= that instant). The clip lasts min(max_seconds, source duration), so it
    holds round(duration * fps) frames, at least one; a still image gives a one-frame clip.
    """
    if width <= 0 or height <= 0 or fps <= 0 or max_seconds <= 0:
        raise ValueError("width, height, fps and max_seconds must be positive")
    with open_media(path) as container:
        if not container.streams.video:
            raise InvalidMedia("The file has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding dominates the cost
        declared_s = _declared_duration_s(stream, container.duration)
        limit_s = min(max_seconds, declared_s) if declared_s else max_seconds
        sink = _FrameSink(_num_frames(limit_s, fps), width, height, fps, on_progress)
        try:
            _decode_into(sink, container.decode(stream))
            frames = sink.finish(known_length=declared_s is not None, max_seconds=max_seconds)
        finally:
            sink.close()
    return Clip(frames=frames, fps=fps)


def _decode_into(sink: _FrameSink, decoded: Iterator[av.VideoFrame]) -> None:
    while True:
        try:
            frame = next(decoded)
        except StopIteration:
            return
        except av.FFmpegError as error:
            if sink.filled == 0 and sink.pending is None:
                raise InvalidMedia("The video could not be decoded.") from error
            return  # a damaged tail after good frames: keep what decoded, as players do
        if not sink.offer(frame):
            return


def _num_frames(duration_s: float, fps: float) -> int:
    return max(1, round(duration_s * fps))


def _declared_duration_s(stream: VideoStream, container_duration: int | None) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container_duration:
        return container_duration / av.time_base
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


def _build_graph(frame: av.VideoFrame, width: int, height: int) -> Graph:
    """Filters that rotate upright, crop the center, scale and convert to RGB.

    Output frames come from the graph's frame pool, so no per-frame allocation (on this kind
    of VM, fresh pages cost more than the conversion itself).
    """
    geometry = _Geometry.of(frame, width, height)
    graph = Graph()
    nodes = [
        graph.add_buffer(
            width=frame.width,
            height=frame.height,
            format=frame.format,
            time_base=frame.time_base or Fraction(1, 1000),
        )
    ]
    for name, args in _UPRIGHT_FILTERS.get(geometry.rotation_deg, ()):
        nodes.append(graph.add(name, args))
    x = (geometry.upright_w - geometry.crop_w) // 2
    y = (geometry.upright_h - geometry.crop_h) // 2
    nodes.append(graph.add("crop", f"{geometry.crop_w}:{geometry.crop_h}:{x}:{y}:exact=1"))
    nodes.append(graph.add("scale", f"{width}:{height}:flags={SCALER}"))
    if frame.format.name.startswith(_YUV_PREFIXES):
        nodes.append(graph.add("format", frame.format.name))
        nodes.append(graph.add("scale", f"flags={SCALER}"))
    nodes.append(graph.add("format", "rgb24"))
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    return graph


class _FrameSink:
    """Places decoded frames into the output slots whose instants they are on screen for."""

    def __init__(
        self, capacity: int, width: int, height: int, fps: float, on_progress: ProgressFn | None
    ) -> None:
        self.frames: Frames = np.empty((capacity, height, width, 3), dtype=np.uint8)
        self.width, self.height, self.fps = width, height, fps
        self.on_progress = on_progress
        self.filled = 0
        self.pending: av.VideoFrame | None = None  # latest decoded frame, not yet placed
        self.pending_s = 0.0
        self.origin_s: float | None = None
        self.frame_step_s = 0.0  # how long the last frame stays on screen, for the tail
        self._graph: Graph | None = None
        self._graph_key: tuple[int, int, str, int] | None = None
        # One converter thread: scaling and copying (both release the GIL) overlap with the
        # decoder instead of holding up the next packet. One thread keeps the graph in order.
        self._converter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidmorph-scale")
        self._in_flight: deque[Future[None]] = deque()

    def close(self) -> None:
        self._converter.shutdown(wait=True, cancel_futures=True)

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
        if self.filled >= len(self.frames):
            return False
        self.pending, self.pending_s = frame, time_s
        return True

    def finish(self, *, known_length: bool, max_seconds: float) -> Frames:
        """Fill the tail with the last frame; unknown lengths end where the last frame does."""
        capacity = len(self.frames)
        if not known_length and self.pending is not None:
            end_s = min(max_seconds, self.pending_s + (self.frame_step_s or 1 / self.fps))
            capacity = min(capacity, _num_frames(end_s, self.fps))
        if self.pending is None:
            raise InvalidMedia("The video has no decodable frames.")
        self._place_until(float("inf"), capacity)
        while self._in_flight:
            self._in_flight.popleft().result()
        if self.on_progress is not None:
            self.on_progress(1.0)
        return self.frames[:capacity]

    def _place_until(self, next_s: float, capacity: int | None = None) -> None:
        """Give the pending frame every slot whose instant falls before `next_s`."""
        end = len(self.frames) if capacity is None else capacity
        first = self.filled
        while self.filled < end and self.filled / self.fps + _TIME_EPSILON_S < next_s:
            self.filled += 1
        if self.filled == first or self.pending is None:
            return
        self._in_flight.append(
            self._converter.submit(self._convert, self.pending, first, self.filled)
        )
        if len(self._in_flight) > _MAX_IN_FLIGHT:
            self._in_flight.popleft().result()
        if self.on_progress is not None and (
            self.filled // _PROGRESS_EVERY_FRAMES != first // _PROGRESS_EVERY_FRAMES
        ):
            self.on_progress(self.filled / len(self.frames))

    def _convert(self, frame: av.VideoFrame, first: int, end: int) -> None:
        self.frames[first] = self._to_rgb(frame)
        if end - first > 1:
            self.frames[first + 1 : end] = self.frames[first]

    def _to_rgb(self, frame: av.VideoFrame) -> Frames:
        key = (frame.width, frame.height, frame.format.name, frame.rotation)
        if self._graph is None or key != self._graph_key:
            # Built from the first frame, rebuilt if a stream changes size or format midway.
            self._graph = _build_graph(frame, self.width, self.height)
            self._graph_key = key
        self._graph.vpush(frame)
        return self._graph.vpull().to_ndarray().view(np.uint8)
