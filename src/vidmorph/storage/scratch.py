"""Scratch space: one temp folder per process under `<data_dir>/tmp`, orphans removed at start.

Uploads stream into it, workers decode and encode in it, S3 inputs are fetched into it. A
process killed mid-upload or mid-task leaves its folder behind; the next process to start on
the same machine removes every folder whose process is gone (and loose files of older versions).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

#: loose files directly under tmp/ (left by versions without per-process folders)
_LOOSE_FILE_AGE_S = 3600.0


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:64]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_scratch(data_dir: Path) -> Path:
    """This process's own scratch folder (created; orphans of dead processes removed first)."""
    root = data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    remove_orphans(root)
    path = root / f"{_host()}~{os.getpid()}~{uuid.uuid4().hex[:6]}"
    path.mkdir()
    return path


def remove_orphans(root: Path) -> int:
    """Remove the scratch folders of dead processes on this host; returns how many."""
    host, removed = _host(), 0
    for entry in root.iterdir():
        # Other processes starting at the same moment clean up too: anything may vanish.
        with contextlib.suppress(OSError):
            if entry.is_dir():
                owner_host, _, rest = entry.name.partition("~")
                pid_text = rest.partition("~")[0]
                if owner_host != host or not pid_text.isdigit() or _alive(int(pid_text)):
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
            elif time.time() - entry.stat().st_mtime > _LOOSE_FILE_AGE_S:
                entry.unlink()
                removed += 1
    if removed:
        log.info("removed %d scratch leftovers of processes that died", removed)
    return removed
