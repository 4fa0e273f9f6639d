"""Fetching a client's videoUri: https only unless private targets are allowed, refused before
any DNS lookup, size-limited, and never leaving a partial file, against real loopback servers."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.receiver import Receiver, dripping, serve_files
from vidmorph.callbacks.fetch import fetch_to_file
from vidmorph.errors import BadRequest


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names the fetcher asked the resolver for; none is really looked up."""
    asked: list[str] = []

    def refuse(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "not looked up in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return asked


@pytest.mark.parametrize(
    "url", ["http://files.vidmorph.invalid/clip.mp4", "HTTP://127.0.0.1/clip.mp4", "ftp://x/y"]
)
def test_plain_http_is_refused_before_any_lookup_when_private_targets_are_not_allowed(
    url: str, tmp_path: Path, lookups: list[str]
) -> None:
    with pytest.raises(BadRequest, match="must be an https URL"):
        fetch_to_file(url, tmp_path / "in", allow_private=False, max_bytes=1000)
    assert lookups == []
    assert not (tmp_path / "in").exists()


def test_https_to_a_private_address_is_refused_without_connecting(tmp_path: Path) -> None:
    with Receiver() as hook:
        url = f"https://127.0.0.1:{hook.port}/clip.mp4"
        with pytest.raises(BadRequest, match="private or loopback"):
            fetch_to_file(url, tmp_path / "in", allow_private=False, max_bytes=1000)
        assert hook.requests == []


def test_allowed_private_http_is_fetched_whole_and_a_too_large_one_leaves_nothing(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "clip.mp4").write_bytes(b"x" * 5000)
    with serve_files(served) as base:
        kind = fetch_to_file(
            f"{base}/clip.mp4", tmp_path / "in", allow_private=True, max_bytes=5000
        )
        assert kind == "video/mp4" and (tmp_path / "in").read_bytes() == b"x" * 5000
        with pytest.raises(BadRequest, match="larger than 4999 bytes"):
            fetch_to_file(f"{base}/clip.mp4", tmp_path / "big", allow_private=True, max_bytes=4999)
        assert not (tmp_path / "big").exists()
        with pytest.raises(BadRequest, match="answered HTTP 404"):
            fetch_to_file(f"{base}/none.mp4", tmp_path / "no", allow_private=True, max_bytes=10)


def test_a_host_that_drips_the_file_is_cut_off_at_the_total_deadline(tmp_path: Path) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
    with dripping(answer, interval_s=0.02) as base:
        started_s = time.monotonic()
        with pytest.raises(BadRequest, match="videoUri took longer than 1 s"):
            fetch_to_file(
                f"{base}/clip.mp4",
                tmp_path / "in",
                allow_private=True,
                max_bytes=5000,
                timeout_s=1.0,
                total_s=1.0,
            )
        elapsed_s = time.monotonic() - started_s
    assert 0.9 < elapsed_s < 2.5
    assert not (tmp_path / "in").exists()
