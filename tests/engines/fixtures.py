"""Failure-mode engines behind the public Engine protocol, for tests (never patches of ours)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from vidmorph.engines.base import EngineInfo, GenerationInput, RunHooks
from vidmorph.media.clip import ClipStream, Frames

BATCH = 4


class SlowEngine:
    """Inverts colours in batches of 4 frames, sleeping between batches: a long RUNNING phase."""

    info = EngineInfo(name="slow", devices=("cpu",), max_seconds=60, deterministic=True)
    batch_sleep_s = 0.15

    def load(self, device: str) -> None:
        pass

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: RunHooks) -> Iterator[Frames]:
        done = 0
        for batch in clip.rebatched(BATCH):
            hooks.check_cancelled()
            time.sleep(self.batch_sleep_s)
            done += len(batch)
            hooks.progress(done / clip.num_frames)
            yield 255 - batch


class RaisesMidway(SlowEngine):
    """Hands on its first 12 frames, then fails."""

    info = EngineInfo(name="raises", devices=("cpu",), max_seconds=60, deterministic=True)
    batch_sleep_s = 0.0

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: RunHooks) -> Iterator[Frames]:
        for index, batch in enumerate(super().generate(clip, job, hooks)):
            if index * BATCH >= 12:
                raise RuntimeError("engine exploded at frame 12")
            yield batch


class Deaf(SlowEngine):
    """Slow, and never reports progress or checks for a cancel."""

    info = EngineInfo(name="deaf", devices=("cpu",), max_seconds=60, deterministic=True)

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: RunHooks) -> Iterator[Frames]:
        for batch in clip.rebatched(BATCH):
            time.sleep(self.batch_sleep_s)
            yield 255 - batch


def deaf() -> Deaf:
    return Deaf()


class FailsInLoad(SlowEngine):
    def load(self, device: str) -> None:
        raise RuntimeError("no weights here")


def slow() -> SlowEngine:
    return SlowEngine()


def raises() -> RaisesMidway:
    return RaisesMidway()


def fails_in_load() -> FailsInLoad:
    return FailsInLoad()


class NeedsOnePetabyte(SlowEngine):
    """Estimates every job at 1 PB of device memory: refused wherever a budget is known."""

    info = EngineInfo(name="petabyte", devices=("cpu",), max_seconds=60, deterministic=True)
    need_bytes = 2**50

    def check_fits(
        self,
        num_frames: int,
        height: int,
        width: int,
        strength: float,
        *,
        budget_bytes: int | None = None,
    ) -> int:
        from vidmorph import errors

        if budget_bytes is not None and self.need_bytes > budget_bytes:
            raise errors.RequestTooLarge(
                f"needs {self.need_bytes} bytes, the workers have {budget_bytes}"
            )
        return self.need_bytes


def petabyte() -> NeedsOnePetabyte:
    return NeedsOnePetabyte()
