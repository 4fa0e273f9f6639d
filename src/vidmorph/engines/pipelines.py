"""What every diffusers engine does around its pipeline, whatever the model.

`place_pipeline` readies loaded weights on the device (the text encoder stays on the CPU);
`PromptCache` encodes a prompt with the text encoder visiting the device for the call only and
keeps the last prompt's embeddings; `PipelineTurns` lets one run at a time use the pipeline.
`check_strength`, `passthrough` and `check_duration` are the checks and the no-model path at the
start of `generate`. Torch is imported lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from vidmorph.engines.base import RunHooks
from vidmorph.engines.devices import stream_releasing
from vidmorph.errors import RequestTooLarge
from vidmorph.media.clip import ClipStream, Frames

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def place_pipeline(pipe: Any, device: torch.device) -> None:
    """No progress bars, VAE tiling on (it bounds VAE memory at 1280x768), the transformer and
    the VAE on `device`; the text encoder stays on the CPU until a prompt needs it."""
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling()
    pipe.transformer.to(device)
    pipe.vae.to(device)


class PromptCache:
    """The last prompt's embeddings, as pipeline keyword arguments."""

    def __init__(self) -> None:
        self._last: tuple[str, dict[str, Any]] | None = None

    def embeds(
        self,
        text: str,
        encoder: torch.nn.Module,
        device: torch.device,
        encode: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """`text`'s embeddings: the cached ones, or `encode()`'s, run without autograd while
        `encoder` visits `device`; it goes back to the CPU (a no-op there) even on error, which
        gives the GPU its memory back for denoising."""
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        import torch

        encoder.to(device)
        try:
            with torch.no_grad():
                kwargs = encode()
        finally:
            encoder.to("cpu")
        self._last = (text, kwargs)
        return kwargs


class PipelineTurns:
    """One run at a time through a loaded pipeline: its scheduler keeps per-call step state,
    so a second worker thread waits its turn for the GPU."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def stream(
        self, work: Callable[[], Iterator[T]], device: torch.device, hooks: RunHooks
    ) -> Iterator[T]:
        """`work()`'s items, made in turn (`devices.stream_releasing`), unless the task was
        cancelled while it waited. The turn lasts until the stream ends or is closed."""
        with self._lock:
            hooks.check_cancelled()
            yield from stream_releasing(work, device)


def check_strength(strength: float) -> None:
    """ValueError for a strength outside 0..1."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {strength}")


def passthrough(clip: ClipStream, hooks: RunHooks) -> Iterator[Frames]:
    """The input's own batches, for a strength that leaves no denoising step: no model runs.
    Each batch is checked for a cancel first and counts towards progress."""
    done = 0
    for batch in clip.checked():
        hooks.check_cancelled()
        yield batch
        done += len(batch)
        hooks.progress(done / clip.num_frames)


def check_duration(clip: ClipStream, max_seconds: float) -> None:
    """RequestTooLarge for a clip longer than `max_seconds` (by more than one frame)."""
    if clip.duration_s > max_seconds + 1.0 / clip.fps:
        raise RequestTooLarge(f"This engine makes at most {max_seconds:g} s per task")
