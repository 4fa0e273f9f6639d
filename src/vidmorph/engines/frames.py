"""Frame geometry for a model with its own frame rate and frame size.

Frames change rate by timestamps, never by blending (blends ghost): each frame at the new rate
shows the source frame nearest to it in time (`nearest_frames`, `frames_covering`), picked
from a stream as it passes (`pick_frames`). Frames
change size by bicubic resampling (`resize_frame`) to a working size that keeps the clip's
aspect within a model's area cap and size multiple (`working_size`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt
from PIL import Image

from vidmorph.engines.diffusion import Frames

#: frame positions exactly halfway between two frames take the earlier one
TIE_EPSILON = 1e-6
#: the default size multiple: a VAE's 8x, then 2x2 patches
SIZE_MULTIPLE = 16
#: the default slack over the area cap: 1280x768 is 7% over 1280x720, not worth a resample
AREA_SLACK = 1.1


def nearest_frames(
    num_out: int, out_fps: float, in_fps: float, num_in: int
) -> npt.NDArray[np.int64]:
    """For each of `num_out` frames at `out_fps`, the index of the input frame (at `in_fps`)
    nearest in time; exact ties go to the earlier frame."""
    positions = np.arange(num_out) * (in_fps / out_fps)
    indices = np.floor(positions + 0.5 - TIE_EPSILON).astype(np.int64)
    clipped: npt.NDArray[np.int64] = np.clip(indices, 0, num_in - 1)
    return clipped


def frames_covering(num_frames: int, fps: float, new_fps: float) -> int:
    """Frames at `new_fps` needed so every one of `num_frames` at `fps` has its nearest one."""
    last_position = (num_frames - 1) * new_fps / fps
    return math.floor(last_position + 0.5 - TIE_EPSILON) + 1


def working_size(
    width: int,
    height: int,
    max_area_px: int,
    *,
    multiple: int = SIZE_MULTIPLE,
    slack: float = AREA_SLACK,
) -> tuple[int, int]:
    """The (width, height) a model runs at: the clip's, or scaled down to `max_area_px` when it
    is over that by more than `slack`, both rounded to `multiple` (a few pixels of aspect change
    at most)."""
    scale = 1.0
    if width * height > max_area_px * slack:
        scale = (max_area_px / (width * height)) ** 0.5

    def rounded(side: int) -> int:
        return max(multiple, round(side * scale / multiple) * multiple)

    return rounded(width), rounded(height)


def pick_frames(frames: Iterable[Frames], indices: Iterable[int]) -> Iterator[Frames]:
    """`frames[i]` for each i of `indices` (non-decreasing), reading `frames` once, in order:
    a frame picked several times is yielded again, one never picked is skipped."""
    source = iter(frames)
    position, current = -1, None
    for index in indices:
        if index < position:
            raise ValueError("pick_frames needs non-decreasing indices")
        while position < index:
            current = next(source, None)
            if current is None:
                raise ValueError(f"The stream ended before frame {index}")
            position += 1
        assert current is not None
        yield current


def stack_batches(frames: Iterable[Frames], batch_frames: int) -> Iterator[Frames]:
    """Single frames stacked into batches of `batch_frames` (the last may be shorter)."""
    held: list[Frames] = []
    for frame in frames:
        held.append(frame)
        if len(held) == batch_frames:
            yield np.stack(held)
            held = []
    if held:
        yield np.stack(held)


def resize_frame(frame: Frames, width: int, height: int) -> Frames:
    """One (H, W, 3) frame bicubic to `width` x `height`; the frame itself when already so."""
    if frame.shape[:2] == (height, width):
        return frame
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC))
