"""Torch devices for the diffusers engines: which device and dtype, seeds, waiting for the
device, checking its output, and handing its memory back. Torch is imported lazily."""

from __future__ import annotations

import gc
import hashlib
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def resolve_device(name: str) -> torch.device:
    """A torch device for "cpu", "cuda" or "cuda:N"; RuntimeError if CUDA is asked but absent."""
    import torch

    device = torch.device(name)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Diffusion engines run on cpu or cuda, not {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"Device {name!r} asked for, but torch sees no CUDA device")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise RuntimeError(f"Device {name!r} asked for, but torch sees only "
                           f"{torch.cuda.device_count()} CUDA devices")  # fmt: skip
    return device


def synchronize(device: torch.device) -> None:
    """Wait until the work queued on `device` is done: CUDA kernels run asynchronously, so a
    clock read without it times their queueing. Nothing to wait for on a CPU."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def check_finite(values: torch.Tensor | npt.NDArray[np.floating[Any]]) -> None:
    """RuntimeError when a model's output (a tensor or an array) holds NaN or infinity, which
    uint8 conversion would silently turn into black or garbage frames (float16 overflows in
    some models)."""
    if isinstance(values, np.ndarray):
        finite = bool(np.isfinite(values).all())
    else:
        import torch

        finite = bool(torch.isfinite(values).all())
    if not finite:
        raise RuntimeError(
            "The model produced non-finite values (NaN or infinity); if VIDMORPH_ENGINE_DTYPE "
            "is float16, use bfloat16 or float32"
        )


#: the dtypes `compute_dtype` can be asked for by name ("auto" picks by device)
DTYPES = ("bfloat16", "float16", "float32")


def compute_dtype(device: torch.device, name: str = "auto") -> torch.dtype:
    """The weights' dtype: `name`, or for "auto" bf16 on GPUs (half the memory, tensor cores)
    and float32 on CPUs, where bf16 is slow. float16 is for GPUs without bf16 (pre-Ampere)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ValueError(f"dtype must be auto or one of {', '.join(DTYPES)}, not {name!r}")
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def dtype_bytes(name: str, device_type: str) -> int:
    """Bytes per value of the weights' dtype `name` on `device_type` (auto: bf16 on CUDA,
    float32 elsewhere): memory figures written for bf16 scale by this over 2."""
    if name == "auto":
        return 2 if device_type == "cuda" else 4
    return 4 if name == "float32" else 2


def window_seed(seed: int, index: int) -> int:
    """Window 0 uses the job's seed as is (a one-window job matches a plain diffusers call);
    later windows a 63-bit hash of (seed, index), so no two windows share their noise."""
    if index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@contextmanager
def window_generator(device: torch.device, job_seed: int, index: int) -> Iterator[torch.Generator]:
    """The generator for window `index` of a job seeded `job_seed` (`window_seed`), with
    torch's global generators seeded the same inside the block and restored after it.

    Some model code draws from the global ones instead of the generator passed in (LTX
    0.9.1-style VAE decoders inject noise so): seeded, such runs still repeat; restored, the
    caller's own randomness is untouched.
    """
    import torch

    seed = window_seed(job_seed, index)
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device.index or 0] if cuda else []):
        # Only the generators fork_rng restores: the CPU's and this device's.
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield seeded_generator(device, seed)


def seeded_generator(device: torch.device, seed: int) -> torch.Generator:
    import torch

    return torch.Generator(device=device).manual_seed(seed)


def release_memory(device: torch.device) -> None:
    """Hand a GPU's cached blocks back to the driver, after collecting tensors held in cycles.

    On a CPU freed tensors already went back to the allocator, and a full collection among
    torch's many objects costs a few hundred milliseconds, so nothing is done there.
    """
    if device.type == "cuda":
        import torch

        gc.collect()
        torch.cuda.empty_cache()


def stream_releasing(make: Callable[[], Iterator[T]], device: torch.device) -> Iterator[T]:
    """`make()`'s items passed on; device memory is released once they end, fail or are
    closed, or `make` itself fails.

    A traceback keeps every frame it passed through alive, and with them the pipeline's
    latents: the frames' locals are cleared (the traceback itself stays, for the log) before
    memory is released, and the exception, TaskCancelled included, propagates unchanged.
    """
    try:
        yield from make()
    except BaseException as error:
        _clear_frames(error)
        raise
    finally:
        release_memory(device)


def _clear_frames(error: BaseException) -> None:
    """Clear the locals of every finished frame in `error`'s traceback and in its chain."""
    pending, seen = [error], set()
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        traceback.clear_frames(link.__traceback__)  # frames still running are skipped
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]
