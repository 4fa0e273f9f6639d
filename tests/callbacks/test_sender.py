"""CallbackSender against real loopback receivers: delivery, signatures and failure classes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.receiver import Receiver, dripping
from vidmorph.callbacks import signing
from vidmorph.callbacks.sender import CallbackSender, DeliveryResult

BODY = json.dumps({"taskId": "user:1-runwayml:gen4-task:abc", "status": "SUCCEEDED"}).encode()


@pytest.fixture
def secret() -> str:
    return signing.new_secret()


@pytest.fixture
def sender() -> Iterator[CallbackSender]:
    with CallbackSender(allow_private=True, timeout_s=2.0) as sender:
        yield sender


def test_delivers_a_signed_post_the_receiver_can_verify(
    sender: CallbackSender, secret: str
) -> None:
    with Receiver() as receiver:
        result = sender.send(f"{receiver.url}/hooks/x?a=1", BODY, secret=secret, msg_id="msg_1")
        assert result == DeliveryResult(ok=True, status_code=200, error=None, retryable=False)
        (request,) = receiver.requests
    assert (request.method, request.path, request.body) == ("POST", "/hooks/x?a=1", BODY)
    assert request.json()["status"] == "SUCCEEDED"
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Vidmorph-Webhooks/0.1"
    assert headers["webhook-id"] == "msg_1"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert signing.verify(
        secret, "msg_1", int(headers["webhook-timestamp"]), request.body,
        headers["webhook-signature"],
    )  # fmt: skip
    assert not any(secret in value for value in headers.values())


def test_uses_the_given_timestamp_for_the_signature(sender: CallbackSender, secret: str) -> None:
    with Receiver() as receiver:
        assert sender.send(
            receiver.url, BODY, secret=secret, msg_id="m", timestamp_s=1_700_000_000
        ).ok
        headers = receiver.requests[0].headers
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == signing.sign(secret, "m", 1_700_000_000, BODY)


def test_a_host_name_keeps_its_host_header_while_the_checked_address_is_used(
    sender: CallbackSender, secret: str
) -> None:
    with Receiver() as receiver:
        url = f"http://localhost:{receiver.port}/hook"
        assert sender.send(url, BODY, secret=secret, msg_id="m").ok
        assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_server_errors_timeouts_and_rate_limits_are_retryable(
    sender: CallbackSender, secret: str, status: int
) -> None:
    with Receiver(status=status) as receiver:
        result = sender.send(receiver.url, BODY, secret=secret, msg_id="m")
    assert (result.ok, result.status_code, result.retryable) == (False, status, True)
    assert str(status) in (result.error or "")


@pytest.mark.parametrize("status", [400, 401, 404, 410])
def test_other_client_errors_are_not_retryable(
    sender: CallbackSender, secret: str, status: int
) -> None:
    with Receiver(status=status) as receiver:
        result = sender.send(receiver.url, BODY, secret=secret, msg_id="m")
    assert (result.ok, result.status_code, result.retryable) == (False, status, False)


def test_a_receiver_that_fails_first_then_succeeds(sender: CallbackSender, secret: str) -> None:
    with Receiver(fail_first=1) as receiver:
        first = sender.send(receiver.url, BODY, secret=secret, msg_id="m")
        second = sender.send(receiver.url, BODY, secret=secret, msg_id="m")
    assert (first.ok, first.retryable, second.ok) == (False, True, True)


def test_redirects_are_not_followed_and_not_retried(sender: CallbackSender, secret: str) -> None:
    with Receiver() as target, Receiver(status=302) as redirector:
        redirector.response_headers["location"] = f"{target.url}/elsewhere"
        result = sender.send(redirector.url, BODY, secret=secret, msg_id="m")
        assert len(redirector.requests) == 1
        assert target.requests == []
    assert (result.ok, result.status_code, result.retryable) == (False, 302, False)
    assert "redirect" in (result.error or "")


def test_a_slow_receiver_beyond_the_timeout_is_a_retryable_timeout(secret: str) -> None:
    with (
        CallbackSender(allow_private=True, timeout_s=0.2) as sender,
        Receiver(delay_s=5.0) as receiver,
    ):
        started_s = time.monotonic()
        result = sender.send(receiver.url, BODY, secret=secret, msg_id="m")
        elapsed_s = time.monotonic() - started_s
    assert (result.ok, result.status_code, result.retryable) == (False, None, True)
    assert "timed out" in (result.error or "")
    assert elapsed_s < 2.0


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_total_deadline(secret: str) -> None:
    # each byte well inside the per-read timeout: only the total deadline ends it
    answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200 + b"\r\n\r\n"
    with (
        CallbackSender(allow_private=True, timeout_s=1.0, total_s=1.5) as sender,
        dripping(answer, interval_s=0.05) as url,
    ):
        started_s = time.monotonic()
        result = sender.send(f"{url}/cb", BODY, secret=secret, msg_id="m")
        elapsed_s = time.monotonic() - started_s
    assert (result.ok, result.status_code, result.retryable) == (False, None, True)
    assert result.error == "took longer than 1.5 s"
    assert 1.4 < elapsed_s < 3.0


def test_a_closed_port_is_a_retryable_connection_error(sender: CallbackSender, secret: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens there now: the connection is refused at once.
    result = sender.send(f"http://127.0.0.1:{port}/hook", BODY, secret=secret, msg_id="m")
    assert (result.ok, result.status_code, result.retryable) == (False, None, True)
    assert "could not connect" in (result.error or "")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433"])
def test_loopback_is_refused_without_allow_private_and_nothing_is_sent(
    secret: str, host: str
) -> None:
    with CallbackSender(allow_private=False) as sender, Receiver() as receiver:
        result = sender.send(f"http://{host}:{receiver.port}/", BODY, secret=secret, msg_id="m")
        assert not receiver.wait_for_count(1, timeout_s=0.2)
    assert (result.ok, result.status_code, result.retryable) == (False, None, False)
    assert "VIDMORPH_CALLBACK_ALLOW_PRIVATE" in (result.error or "")


def test_a_malformed_secret_is_a_permanent_failure_that_does_not_quote_it(
    sender: CallbackSender,
) -> None:
    with Receiver() as receiver:
        result = sender.send(receiver.url, BODY, secret="whsec_!!secret!!", msg_id="m")
        assert receiver.requests == []
    assert (result.ok, result.retryable) == (False, False)
    assert "!!secret!!" not in (result.error or "")


def test_one_sender_serves_many_threads_at_once(sender: CallbackSender, secret: str) -> None:
    results: list[DeliveryResult] = []
    with Receiver(delay_s=0.05) as receiver:
        threads = [
            threading.Thread(
                target=lambda i=i: results.append(
                    sender.send(receiver.url, BODY, secret=secret, msg_id=f"msg_{i}")
                )
            )
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)
        ids = sorted(request.headers["webhook-id"] for request in receiver.requests)
    assert all(result.ok for result in results) and len(results) == 8
    assert ids == sorted(f"msg_{i}" for i in range(8))
