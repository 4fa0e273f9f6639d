"""A server process freezes its heap once started (api.server.freeze_heap), the moderation
classifier that start-up loads included, so the collector's full passes skip it; a test's app
does not. Each case runs in a fresh interpreter: freezing is for the process's lifetime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = """
import asyncio, gc, json, sys
from pathlib import Path
from vidmorph.api.app import create_app
from vidmorph.config import Settings
from vidmorph.container import build_services
from vidmorph.moderation import classifier

data = Path(sys.argv[1])
settings = Settings(data_dir=data, workers=0, api_token="user:1-heaptoken00000000000000000")
app = create_app(build_services(settings), freeze=sys.argv[2] == "freeze")

async def started():
    async with app.router.lifespan_context(app):
        model = classifier._predict  # loaded by start-up, after the app was made
        scanned = any(o is model for o in gc.get_objects())
        return {"loaded": model is not None, "scanned": scanned, "frozen": gc.get_freeze_count()}

print(json.dumps(asyncio.run(started())))
"""


@pytest.mark.parametrize("freeze", [True, False])
def test_start_up_objects_are_frozen_only_in_a_server_process(tmp_path: Path, freeze: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "data"), "freeze" if freeze else "no"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    heap = json.loads(out.strip().splitlines()[-1])
    assert heap["loaded"]
    if freeze:
        assert not heap["scanned"] and heap["frozen"] > 10_000
    else:
        assert heap["scanned"] and heap["frozen"] == 0
