"""The runway engine's download of an upstream output: whole when it fits, refused (and
nothing left behind) past its size limit, its deadline or a failed answer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.receiver import dripping, serve_files
from vidmorph import errors
from vidmorph.upstream import runway


def test_an_output_is_downloaded_whole_or_refused_leaving_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "out.mp4").write_bytes(b"v" * 4000)
    out = tmp_path / "got.mp4"
    with serve_files(served) as base:
        runway._download(f"{base}/out.mp4", out)
        assert out.read_bytes() == b"v" * 4000
        monkeypatch.setattr(runway, "MAX_OUTPUT_BYTES", 3999)
        with pytest.raises(errors.TaskFailed, match="larger than 3999 bytes"):
            runway._download(f"{base}/out.mp4", out)
        assert not out.exists()
        with pytest.raises(errors.TaskFailed, match="HTTP 404"):
            runway._download(f"{base}/none.mp4", out)
        assert not out.exists()


def test_an_output_that_drips_is_cut_off_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runway, "DOWNLOAD_TOTAL_S", 1.0)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + b"v" * 500
    out = tmp_path / "got.mp4"
    with dripping(answer, interval_s=0.02) as base:
        started_s = time.monotonic()
        with pytest.raises(errors.TaskFailed, match="could not be downloaded"):
            runway._download(f"{base}/out.mp4", out)
    assert time.monotonic() - started_s < 3
    assert not out.exists()
