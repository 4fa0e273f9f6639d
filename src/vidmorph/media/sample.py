"""A sample input for trying the service: `vidmorph sample input.mp4`.

A few seconds of a drawn street (sky, a sun, houses, a road with cars driving by) with a soft
tone, as H.264 and AAC in MP4: something with motion and layout for a prompt to restyle, made
here, so a first try needs no video of one's own. Frames are painted one at a time.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE_HZ = 48_000


def write_sample(
    path: Path, *, seconds: float = 5.0, size: tuple[int, int] = (640, 384), fps: int = 24
) -> Path:
    """Write the sample clip to `path`; `size` is (width, height), both even."""
    width, height = size
    scene = _Street(width, height)
    frames = max(1, round(seconds * fps))
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20"}
        sound = out.add_stream("aac", rate=AUDIO_RATE_HZ, layout="mono")
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(scene.paint(index / fps), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _tone(out, sound, seconds)
    return path


class _Street:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.horizon = int(height * 0.55)
        ys = np.linspace(0.0, 1.0, self.horizon, dtype=np.float32)[:, None, None]
        top, low = np.array([70, 130, 200], np.float32), np.array([190, 220, 240], np.float32)
        self.sky = np.broadcast_to(top * (1 - ys) + low * ys, (self.horizon, width, 3))
        rng = np.random.default_rng(7)
        self.houses = [
            (int(x), int(rng.integers(height // 6, height // 3)), rng.integers(90, 220, 3))
            for x in np.arange(0, width, width // 8)
        ]

    def paint(self, t: float) -> np.ndarray:
        w, h, horizon = self.w, self.h, self.horizon
        img = np.empty((h, w, 3), np.uint8)
        img[:horizon] = self.sky
        img[horizon:] = (70, 70, 75)  # the road
        middle, dash = horizon + (h - horizon) // 2, max(2, w // 16)
        for x in range(0, w, 2 * dash):  # the road's centre line
            img[middle : middle + 3, x : x + dash] = (230, 230, 230)
        cx, cy, r = int(w * 0.8), int(h * 0.15), max(4, h // 14)  # the sun
        yy, xx = np.ogrid[:horizon, :w]
        img[:horizon][(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (250, 220, 120)
        house_w = w // 8 - 6
        for x, tall, paint in self.houses:
            img[horizon - tall : horizon, x + 3 : x + 3 + house_w] = paint
            for wy in range(horizon - tall + 8, horizon - 10, 18):  # windows
                for wx in range(x + 10, x + house_w - 8, 16):
                    img[wy : wy + 8, wx : wx + 7] = (250, 240, 180)
        near, far = horizon + (h - horizon) // 4, horizon + 3 * (h - horizon) // 4
        cars = ((w / 3, (200, 40, 40), 0.0, near), (w / 5, (40, 90, 200), 0.5, far))
        for speed, colour, offset, lane in cars:
            x = int((t * speed + offset * w) % (w + w // 5)) - w // 5
            self._car(img, x, lane, colour)
        return img

    def _car(self, img: np.ndarray, x: int, y: int, colour: tuple[int, int, int]) -> None:
        cw, ch = self.w // 6, max(8, self.h // 14)
        x0, x1 = max(0, x), min(self.w, x + cw)
        if x1 > x0:
            img[y : y + ch, x0:x1] = colour
            img[y - ch // 2 : y, max(0, x + cw // 4) : max(0, min(self.w, x + 3 * cw // 4))] = (
                colour
            )


def _tone(out: av.container.OutputContainer, sound: av.AudioStream, seconds: float) -> None:
    samples = int(seconds * AUDIO_RATE_HZ)
    t = np.arange(samples, dtype=np.float32) / AUDIO_RATE_HZ
    wave = 0.15 * np.sin(2 * math.pi * 220.0 * t) * (0.6 + 0.4 * np.sin(2 * math.pi * 0.5 * t))
    chunk = 1024
    for start in range(0, samples, chunk):
        part = wave[start : start + chunk].astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(part, format="flt", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE_HZ, start
        out.mux(sound.encode(frame))
    out.mux(sound.encode(None))
