"""Signed file URLs expire; the admin CLI lifts a moderation suspension."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import LiveServer
from vidmorph.storage.local import LocalStorage

ROOT = Path(__file__).resolve().parents[2]


def test_signed_urls_expire_and_bind_to_their_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files", "http://h", b"k" * 32)
    now = int(time.time())
    sig = storage.sign("1/a/video.mp4", now + 60)
    assert storage.verify("1/a/video.mp4", now + 60, sig)
    assert not storage.verify("1/b/video.mp4", now + 60, sig)
    assert not storage.verify("1/a/video.mp4", now + 61, sig)
    stale = storage.sign("1/a/video.mp4", now - 1)
    assert not storage.verify("1/a/video.mp4", now - 1, stale)
    other_key = LocalStorage(tmp_path / "files", "http://h", b"j" * 32)
    assert not other_key.verify("1/a/video.mp4", now + 60, sig)


def test_account_unsuspend_command_lifts_the_suspension(server: LiveServer) -> None:
    email = "default@vidmorph.local"
    server.ctx.accounts.set_suspended(1, email, True)
    assert server.client.get(f"{server.api}/accounts/{email}").json()["error"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDMORPH_")}
    env.update(VIDMORPH_DATA_DIR=str(server.ctx.settings.data_dir), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "vidmorph", "account", "unsuspend", email],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in server.client.get(f"{server.api}/accounts/{email}").json()
    missing = subprocess.run(
        [sys.executable, "-m", "vidmorph", "account", "unsuspend", "no@x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert missing.returncode == 1
