"""Model-agnostic machinery for diffusers video engines: windows, seams and steps.

A clip longer than one model window is generated as overlapping windows (`plan_windows`): each
window after the first is conditioned on the tail of the previous window's output and its first
`overlap` frames are cross-faded into that tail (`place_window`), so no seam shows a jump;
`stream_windows` runs a plan's windows in turn over a stream of frames, holding about one
window and handing frames on as soon as their seam is final. `StepProgress` turns the pipelines'
`callback_on_step_end` into overall progress and cancel checks. The cost model that weights
that progress and refuses jobs that cannot fit is in `costs.py`; devices, dtypes, seeds and
memory release are in `devices.py`. Torch is imported lazily: importing an engine stays cheap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from vidmorph.engines.base import RunHooks

if TYPE_CHECKING:
    pass

Frames = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Window:
    """One model call over frames [start, stop) of the padded clip; the first `overlap` frames
    repeat the previous window's last ones (0 for the first window)."""

    index: int
    start: int
    num_frames: int
    overlap: int

    @property
    def stop(self) -> int:
        return self.start + self.num_frames


@dataclass(frozen=True)
class Plan:
    """The windows of one clip and the frame size they run at (padded or scaled to it)."""

    windows: list[Window]
    height: int
    width: int


@dataclass(frozen=True)
class Sampling:
    """How every window of a call is sampled; each engine adds its schedule."""

    guidance_scale: float
    strength: float  # SDEdit strength, already clamped by the engine
    steps: int  # denoising steps that strength leaves, > 0
    seed: int
    embeds: dict[str, Any]  # the prompt's embeddings (+ negative ones with CFG) as kwargs


def frames_to_multiple(num_frames: int, frame_multiple: int) -> int:
    """The smallest frame count of the form `frame_multiple * k + 1` that holds `num_frames`."""
    if num_frames < 1:
        raise ValueError(f"A clip needs at least one frame, got {num_frames}")
    return -(-(num_frames - 1) // frame_multiple) * frame_multiple + 1


def plan_windows(num_frames: int, window: int, overlap: int, frame_multiple: int) -> list[Window]:
    """Cover `num_frames` with windows of `window` frames, each overlapping the previous one.

    Lengths and overlaps are `frame_multiple * k + 1` (what video VAEs accept), so every window
    starts on a latent-frame boundary. The last window is shortened to the smallest valid length
    that reaches the end; it always adds at least `frame_multiple` new frames. `2 * overlap` may
    not exceed `window`: a window's cross-faded head and the tail the next one is conditioned on
    must not meet. Frames past `num_frames` are padding the caller supplies.
    """
    for name, value in (("window", window), ("overlap", overlap)):
        if value < 1 or (value - 1) % frame_multiple:
            raise ValueError(f"{name} must be {frame_multiple}k+1 frames, got {value}")
    if 2 * overlap > window:
        raise ValueError(f"overlap {overlap} is more than half the window {window}")
    if num_frames <= window:
        return [Window(0, 0, frames_to_multiple(num_frames, frame_multiple), 0)]
    windows = [Window(0, 0, window, 0)]
    while windows[-1].stop < num_frames:
        start = windows[-1].stop - overlap
        length = min(window, frames_to_multiple(num_frames - start, frame_multiple))
        windows.append(Window(len(windows), start, length, overlap))
    return windows


def pad_frames(frames: Frames, num_frames: int, height: int, width: int) -> Frames:
    """Pad (T, H, W, 3) frames at the end, bottom and right by repeating the edge values."""
    count, rows, cols = frames.shape[:3]
    if (count, rows, cols) == (num_frames, height, width):
        return frames
    pad = ((0, num_frames - count), (0, height - rows), (0, width - cols), (0, 0))
    padded: Frames = np.pad(frames, pad, mode="edge")
    return padded


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def place_window(out: Frames, frames: Frames, window: Window) -> None:
    """Write a window's frames into `out` at its place, cross-fading its first `overlap` frames
    linearly into what is there: the previous window's weight falls from overlap/(overlap+1) to
    1/(overlap+1), so neither end of the seam steps."""
    stop = min(window.stop, out.shape[0])
    frames = frames[: stop - window.start]
    head = min(window.overlap, frames.shape[0])
    for offset in range(head):  # frame by frame: a float copy of the whole overlap is large
        weight = (offset + 1) / (head + 1)
        target = out[window.start + offset]
        mixed = target.astype(np.float32) * (1.0 - weight) + frames[offset] * weight
        target[...] = np.rint(mixed).astype(np.uint8)
    out[window.start + head : stop] = frames[head:]


class FrameWindow:
    """The input frames the current window needs, read from a stream as windows ask for them
    and let go once no later window reads them: memory holds about one window."""

    def __init__(self, frames: Iterator[Frames], num_frames: int, height: int, width: int) -> None:
        self._frames, self.num_frames = frames, num_frames
        self.height, self.width = height, width
        self._held: list[Frames] = []
        self._first = 0  # index of _held[0] in the stream

    def take(self, start: int, stop: int) -> Frames:
        """Frames [start, stop), padded past the stream's end and to the plan's size
        (`pad_frames`: the same values padding the whole clip would give)."""
        real_stop = min(stop, self.num_frames)
        while self._first + len(self._held) < real_stop:
            frame = next(self._frames, None)
            if frame is None:
                raise ValueError(f"The stream ended before its {self.num_frames} frames")
            self._held.append(frame)
        held = self._held[start - self._first : real_stop - self._first]
        return pad_frames(np.stack(held), stop - start, self.height, self.width)

    def drop_before(self, start: int) -> None:
        del self._held[: max(0, start - self._first)]
        self._first = max(self._first, start)


def stream_windows(
    plan: Plan,
    frames: Iterator[Frames],
    num_frames: int,
    progress: StepProgress,
    make: Callable[[Frames, Frames | None, Window], Frames],
) -> Iterator[Frames]:
    """Run a plan's windows in turn as their input frames arrive, yielding output batches as
    soon as they are final.

    `frames` yields the `num_frames` input frames one at a time. The model call
    `make(inputs, tail, window)` gets the window's padded input and the previous window's
    output over its first `overlap` frames (None for the first window); what it makes is
    cross-faded into that tail (`place_window`). A window's output up to where the next
    window starts is final once it is placed and is yielded then; the rest waits for the next
    window's cross-fade. Output is at the plan's (padded) size, `num_frames` frames in all;
    cropping is the caller's. Each call runs under `torch.no_grad`.
    """
    import torch

    source = FrameWindow(frames, num_frames, plan.height, plan.width)
    tail: Frames | None = None
    for position, window in enumerate(plan.windows):
        progress.start_window(window.index)
        inputs = source.take(window.start, window.stop)
        with torch.no_grad():
            made = make(inputs, tail, window)
        out = np.empty_like(inputs)
        if tail is not None:
            out[: len(tail)] = tail
        place_window(out, made, Window(window.index, 0, window.num_frames, window.overlap))
        progress.window_done()
        following = plan.windows[position + 1] if position + 1 < len(plan.windows) else None
        final_stop = following.start if following is not None else window.stop
        ready = min(final_stop, num_frames) - window.start
        if ready > 0:
            yield out[:ready]
        if following is None:
            return
        tail = out[following.start - window.start :].copy()
        source.drop_before(following.start)


def denoising_steps(num_steps: int, strength: float) -> int:
    """Steps an SDEdit call runs: diffusers' `get_timesteps` keeps int(steps * strength)."""
    return min(int(num_steps * strength), num_steps)


class StepProgress:
    """Maps (window, denoising step) to overall progress and checks for cancellation.

    `window_s[i]` is window i's predicted (denoise, codec) seconds: each step reports its share
    of the denoise time, and `window_done` the codec (VAE) time. Pass `on_step_end` as the
    pipeline's `callback_on_step_end`: a cancel raises out of it and stops the call at that step.
    `sync` waits for the device before a step's end is timed (`devices.synchronize`).
    """

    def __init__(
        self,
        hooks: RunHooks,
        steps: int,
        window_s: Sequence[tuple[float, float]],
        sync: Callable[[], None] = lambda: None,
    ) -> None:
        self.hooks, self.sync = hooks, sync
        self.steps = steps
        self.window_s = list(window_s)
        self.total_s = sum(denoise + codec for denoise, codec in self.window_s) or 1.0
        self.done_s = 0.0
        self.window = 0
        #: time.perf_counter() at the last step's end: where denoising ended and decoding began
        self.last_step_at = time.perf_counter()

    def start_window(self, index: int) -> None:
        self.hooks.check_cancelled()
        self.window = index

    def on_step_end(
        self, pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        self.sync()
        self.last_step_at = time.perf_counter()
        self.hooks.check_cancelled()
        denoise_s = self.window_s[self.window][0]
        fraction = min(step + 1, self.steps) / max(self.steps, 1)
        self.hooks.progress(min(1.0, (self.done_s + denoise_s * fraction) / self.total_s))
        return callback_kwargs

    def window_done(self) -> None:
        self.hooks.check_cancelled()  # before, so a cancelled run never reports 1
        self.done_s += sum(self.window_s[self.window])
        last = self.window == len(self.window_s) - 1
        self.hooks.progress(1.0 if last else min(1.0, self.done_s / self.total_s))
