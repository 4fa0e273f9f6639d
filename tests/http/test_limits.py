"""HTTP hardening, over raw sockets against a real server: request heads are bounded (431) and
timed (408), stalled bodies time out (408) with their upload's temp file removed, JSON bodies
are capped (413), idle keep-alive connections outlive uvicorn's 5 s default."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import LiveServer, start_server
from tests.wire import read_message
from vidmorph.config import Settings


@pytest.fixture
def live(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    settings = make_settings(
        workers=0,
        max_header_bytes=8192,
        header_timeout_s=1.0,
        body_timeout_s=1.0,
        max_json_bytes=4096,
    )
    with start_server(settings) as server:
        yield server


def connect(live: LiveServer) -> socket.socket:
    port = int(live.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    message = read_message(sock)
    assert message is not None, "the server closed without answering"
    status_line, headers, body = message
    return int(status_line.split()[1]), headers, body


def test_a_huge_header_gets_431_in_the_envelope_and_the_server_stays_quick(
    live: LiveServer,
) -> None:
    sock = connect(live)
    errors: list[BaseException] = []

    def send_forever() -> None:  # 50 MB of one header: the server must not wait for it all
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
            for _ in range(800):
                sock.sendall(b"a" * 65536)
        except OSError as exc:
            errors.append(exc)

    sender = threading.Thread(target=send_forever, daemon=True)
    sender.start()
    status, headers, body = read_response(sock)
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "error": "Request headers are larger than 8192 bytes.",
        "code": 431,
    }
    sender.join(timeout=30)
    assert errors, "the server read all 50 MB instead of hanging up"
    sock.close()
    t0 = time.monotonic()
    assert httpx.get(f"{live.base_url}/healthz").status_code == 200
    assert time.monotonic() - t0 < 1.0


def test_headers_within_the_bound_pass_even_when_the_body_arrives_with_them(
    live: LiveServer, tmp_path: Path
) -> None:
    # One send of head + 100 KB of body: only the head counts against the bound.
    sock = connect(live)
    body = b"x" * 100_000
    sock.sendall(
        b"POST /v1/runwayml/assets/?name=n HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {live.token}\r\nContent-Type: video/mp4\r\n".encode()
        + f"X-Pad: {'p' * 6000}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    status, _, payload = read_response(sock)
    assert status == 400, payload  # not 431: bytes that are not a video, refused by the probe
    sock.close()


def test_a_head_that_stalls_gets_408(live: LiveServer) -> None:
    sock = connect(live)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    t0 = time.monotonic()
    status, _, body = read_response(sock)
    assert status == 408 and json.loads(body)["code"] == 408
    assert time.monotonic() - t0 < 5
    sock.close()


def test_a_stalled_upload_gets_408_and_leaves_no_temp_file(live: LiveServer) -> None:
    sock = connect(live)
    sock.sendall(
        b"POST /v1/runwayml/assets/?name=n HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {live.token}\r\nContent-Type: video/mp4\r\n".encode()
        + b"Content-Length: 1000000\r\n\r\n"
        + b"\0" * 50_000
    )
    time.sleep(0.3)
    assert list(live.ctx.tmp_dir.glob("upload-*")), "the upload should be on its way to disk"
    status, headers, body = read_response(sock)
    assert status == 408, body
    assert json.loads(body)["error"].startswith("The request body stalled")
    assert headers.get("connection") == "close"
    deadline = time.monotonic() + 5
    while list(live.ctx.tmp_dir.glob("upload-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(live.ctx.tmp_dir.glob("upload-*"))
    sock.close()


def test_an_upload_that_trickles_gets_408_and_leaves_no_temp_file(
    make_settings: Callable[..., Settings],
) -> None:
    # a byte every 0.2 s never stalls (1 s) but is far under 1000 bytes/s on average
    settings = make_settings(workers=0, body_timeout_s=1.0, min_upload_rate_bytes_s=1000)
    with start_server(settings) as live:
        sock = connect(live)
        sock.sendall(
            b"POST /v1/runwayml/assets/?name=n HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {live.token}\r\nContent-Type: video/mp4\r\n".encode()
            + b"Content-Length: 100000\r\n\r\n"
        )
        started_s = time.monotonic()
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() - started_s < 10 and b"\r\n\r\n" not in answer:
            try:
                sock.sendall(b"\0")
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(5)
        status_line = answer.split(b"\r\n", 1)[0]
        assert b" 408 " in status_line, answer[:200]
        assert b"bytes/s" in answer or b"bytes/s" in sock.recv(65536)
        assert time.monotonic() - started_s < 4
        sock.close()
        deadline = time.monotonic() + 5
        while list(live.ctx.tmp_dir.glob("upload-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not list(live.ctx.tmp_dir.glob("upload-*"))


def _create_head(live: LiveServer, length: int) -> bytes:
    return (
        b"POST /v1/runwayml/gen3/video HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {live.token}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def test_a_json_body_that_stalls_gets_408_and_admits_nothing(live: LiveServer) -> None:
    body = json.dumps({"assetId": "user:1-a@b.c-asset-x", "text_prompt": "a street"}).encode()
    sock = connect(live)
    sock.sendall(_create_head(live, len(body)) + body[:10])
    t0 = time.monotonic()
    status, _, answer = read_response(sock)
    assert status == 408, answer
    assert json.loads(answer)["error"].startswith("The request body stalled")
    assert 0.9 < time.monotonic() - t0 < 5
    sock.close()


def test_a_json_body_that_trickles_within_the_timeout_is_read_whole(live: LiveServer) -> None:
    """The body timeout bounds each wait for the next chunk, not the whole body: four pieces
    0.6 s apart take longer than the 1 s timeout and still make a request."""
    body = json.dumps({"assetId": "user:1-a@b.c-asset-x", "text_prompt": "a street"}).encode()
    sock = connect(live)
    sock.sendall(_create_head(live, len(body)))
    step = len(body) // 4 + 1
    for start in range(0, len(body), step):
        time.sleep(0.6)
        sock.sendall(body[start : start + step])
    status, _, answer = read_response(sock)
    assert status == 404, answer  # read whole and parsed: the asset does not exist
    sock.close()


def test_a_json_body_past_its_cap_gets_413(live: LiveServer) -> None:
    resp = live.client.post(
        f"{live.api}/gen3/video", json={"assetId": "x", "text_prompt": "p" * 10_000}
    )
    assert resp.status_code == 413 and resp.json()["code"] == 413


def test_an_idle_keep_alive_connection_outlives_uvicorns_default(live: LiveServer) -> None:
    sock = connect(live)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.sendall(request)
    assert read_response(sock)[0] == 200
    time.sleep(6.0)  # uvicorn alone would have closed it after 5 s
    sock.sendall(request)
    assert read_response(sock)[0] == 200
    sock.close()
