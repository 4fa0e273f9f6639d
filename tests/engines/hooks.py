"""A RunHooks double for engine tests: records progress, cancels at a chosen check."""

from __future__ import annotations

from vidmorph.errors import TaskCancelled


class RecordingHooks:
    """Records progress; raises TaskCancelled from the `cancel_at`-th cancellation check on."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.ratios: list[float] = []
        self.checks = 0
        self.cancel_at = cancel_at

    def progress(self, ratio: float) -> None:
        self.ratios.append(ratio)

    def check_cancelled(self) -> None:
        self.checks += 1
        if self.cancel_at is not None and self.checks >= self.cancel_at:
            raise TaskCancelled()
