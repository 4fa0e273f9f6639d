"""The protocol of an upstream engine, beside the frame engines of `vidmorph.engines`.

A frame engine sees frames and never files. An upstream engine hands the task to another
service instead: it gets the input video's file and writes the service's output video to a
file, which the worker then fits to the task's frame, rate and length like any input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from vidmorph.engines.base import GenerationInput, RunHooks


@dataclass(frozen=True)
class UpstreamJob:
    job: GenerationInput
    #: the upstream job already started for this task by an earlier run, if any
    resume_id: str | None
    #: called with the upstream job's id as soon as it exists (before any waiting)
    remember: Callable[[str], None]


@runtime_checkable
class Upstream(Protocol):
    def load(self, device: str) -> None: ...

    def run_upstream(self, source: Path, work: UpstreamJob, hooks: RunHooks, out: Path) -> None:
        """Hand `source` to the service, follow it (progress, cancel) and write its output to
        `out`. A cancel (`hooks.check_cancelled` raising) cancels the upstream job too.
        Raises `vidmorph.errors.TaskFailed` with the service's reason when it fails there."""
