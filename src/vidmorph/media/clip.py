"""Frames as engines consume and return them: a whole `Clip`, or a `ClipStream` of batches.

A task's media path is a stream (decode -> engine -> encode, `media.stream`), so memory follows
the batch and the engine's window, never the clip's length. `Clip` stays for what is short by
nature (a preview's first frame, tests) and converts both ways.

A stream's frames are RGB (`RGB24`, each (H, W, 3)) or the encoder's own BT.709 limited-range
4:2:0 (`YUV420P`, each (H * 3 / 2, W): the Y plane's H rows, then U's and V's quarter planes,
two of their rows per row, the layout FFmpeg's yuv420p arrays have). An engine that can work
on YUV saves the decoder and the encoder their RGB conversions (`media.pixels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.uint8]
#: frames per batch where nothing asks otherwise: 12 frames of 1280x768 RGB are 35 MB
BATCH_FRAMES = 12
RGB24, YUV420P = "rgb24", "yuv420p"
PIXEL_FORMATS = (RGB24, YUV420P)


def frame_shape(pixel_format: str, width: int, height: int) -> tuple[int, ...]:
    """The array shape of one frame of `width` x `height` in `pixel_format`."""
    if pixel_format == RGB24:
        return (height, width, 3)
    if pixel_format == YUV420P:
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p frames need even sizes, got {width}x{height}")
        return (height * 3 // 2, width)
    raise ValueError(f"Unknown pixel format {pixel_format!r}; known: {', '.join(PIXEL_FORMATS)}")


@dataclass(frozen=True)
class Clip:
    """RGB frames shaped (T, H, W, 3), uint8, shown at `fps` frames per second."""

    frames: Frames
    fps: float

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[3] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"Clip frames must be uint8 (T, H, W, 3), got {self.frames.shape}")
        if self.fps <= 0:
            raise ValueError("Clip fps must be positive")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def stream(self, batch_frames: int = BATCH_FRAMES) -> ClipStream:
        """The clip as a stream of views, `batch_frames` at a time."""
        if batch_frames < 1:
            raise ValueError("batch_frames must be at least 1")
        batches = (
            self.frames[start : start + batch_frames]
            for start in range(0, self.num_frames, batch_frames)
        )
        return ClipStream(batches, self.num_frames, self.width, self.height, self.fps)


@dataclass(frozen=True)
class ClipStream:
    """A clip that arrives in order as batches of frames in `pixel_format`, each
    (t, *frame_shape) uint8: (t, H, W, 3) for RGB.

    `num_frames` is known before the first batch (windowed engines plan by it) and the batches
    total exactly that many. A consumer reads `batches` once; a batch stays valid after the
    next one arrives (producers hand over fresh arrays, never reuse them).
    """

    batches: Iterable[Frames]
    num_frames: int
    width: int
    height: int
    fps: float
    pixel_format: str = RGB24

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.width < 1 or self.height < 1 or self.fps <= 0:
            raise ValueError(
                f"A clip stream needs frames, a size and a rate, got {self.num_frames} frames "
                f"of {self.width}x{self.height} at {self.fps} fps"
            )
        frame_shape(self.pixel_format, self.width, self.height)  # a known format that fits

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return frame_shape(self.pixel_format, self.width, self.height)

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    def checked(self) -> Iterator[Frames]:
        """The batches, each checked against the declared size, and their total against the
        declared count (ValueError at the first that does not match)."""
        count, shape = 0, self.frame_shape
        for batch in self.batches:
            if batch.shape[1:] != shape or batch.dtype != np.uint8:
                raise ValueError(
                    f"A batch of {batch.shape} {batch.dtype} in a {self.width}x{self.height}"
                    f" {self.pixel_format} stream"
                )
            if count + len(batch) > self.num_frames:
                raise ValueError(f"The stream holds more than its {self.num_frames} frames")
            count += len(batch)
            yield batch
        if count != self.num_frames:
            raise ValueError(f"The stream ended after {count} of its {self.num_frames} frames")

    def frames(self) -> Iterator[Frames]:
        """Frame by frame, each `frame_shape`."""
        for batch in self.checked():
            yield from batch

    def rebatched(self, batch_frames: int) -> Iterator[Frames]:
        """The same frames in batches of `batch_frames` (the last one may be shorter); batches
        that already have that size pass through uncopied."""
        if batch_frames < 1:
            raise ValueError("batch_frames must be at least 1")
        buffer = np.empty((batch_frames, *self.frame_shape), dtype=np.uint8)
        filled = 0
        for batch in self.checked():
            if filled == 0 and len(batch) == batch_frames:
                yield batch
                continue
            for frame in batch:
                buffer[filled] = frame
                filled += 1
                if filled == batch_frames:
                    yield buffer
                    buffer, filled = np.empty_like(buffer), 0
        if filled:
            yield buffer[:filled]

    def with_batches(
        self, batches: Iterable[Frames], pixel_format: str | None = None
    ) -> ClipStream:
        """A stream of the same clip made of `batches` (in `pixel_format`, else this one's)."""
        fmt = pixel_format or self.pixel_format
        return ClipStream(batches, self.num_frames, self.width, self.height, self.fps, fmt)

    def collect(self) -> Clip:
        """The whole RGB stream in memory (for short clips and tests only; `media.pixels.to_rgb`
        turns a YUV stream into RGB first)."""
        if self.pixel_format != RGB24:
            raise ValueError(f"A Clip holds RGB frames, not {self.pixel_format}")
        frames = np.empty((self.num_frames, self.height, self.width, 3), dtype=np.uint8)
        for index, frame in enumerate(self.frames()):
            frames[index] = frame
        return Clip(frames, self.fps)
