"""The composition root keeps its data private: the data directory 0700, the SQLite database
(which holds the URL-signing key and webhook secrets) and its WAL 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidmorph.cli.credentials import write_private
from vidmorph.config import Settings
from vidmorph.container import build_context


@pytest.fixture
def open_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("existing", [False, True])
def test_the_data_directory_and_database_are_private(tmp_path: Path, existing: bool) -> None:
    data = tmp_path / "data"
    if existing:
        data.mkdir(mode=0o755)
        data.chmod(0o755)
    ctx = build_context(Settings(data_dir=data, workers=0, moderation_classifier=False))
    try:
        ctx.users.create("whsec_dGVzdA==")  # a write: the WAL exists now
        assert _mode(data) == 0o700
        database = data / "vidmorph.db"
        assert _mode(database) == 0o600
        assert _mode(database.with_name("vidmorph.db-wal")) == 0o600
    finally:
        ctx.db.close()


@pytest.mark.usefixtures("open_umask")
def test_private_files_are_written_whole_and_0600_over_any_file_there(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "api-token"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "secret\n")
    assert target.read_text() == "secret\n" and _mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["api-token"]  # no temp file left
