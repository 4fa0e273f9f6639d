"""Clip: the frames engines consume and return, with their frame rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.uint8]


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
