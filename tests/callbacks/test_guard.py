"""replyUrl guarding: request-time syntax and IP-literal checks, send-time resolution checks.

No test here connects anywhere; only "localhost" is really resolved (it is in /etc/hosts), and
other names go through a stand-in for getaddrinfo so no DNS query leaves the machine.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from vidmorph.callbacks import guard
from vidmorph.callbacks.guard import TargetRefused, resolve_target, validate_reply_url
from vidmorph.errors import BadRequest

NON_PUBLIC_URLS = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://198.18.0.1/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fec0::1]/hook",
    "http://[ff02::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[::127.0.0.1]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://[64:ff9b::a00:1]/hook",
    "http://localhost/hook",
    "http://LOCALHOST:9000/hook",
    "http://localhost./hook",
    "http://api.localhost/hook",
    "https://127.0.0.1./hook",
]

ODD_LOOPBACK_FORMS = [
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://0x7f000001/hook",
    "http://0177.0.1/hook",
    "http://127.1/hook",
    "http://0X7F.0.0.1/hook",
    "http://0/hook",
]


@pytest.mark.parametrize("url", NON_PUBLIC_URLS + ODD_LOOPBACK_FORMS)
def test_non_public_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(BadRequest) as raised:
        validate_reply_url(url, allow_private=False)
    assert raised.value.status == 400
    assert "VIDMORPH_CALLBACK_ALLOW_PRIVATE=true" in raised.value.public_message


@pytest.mark.parametrize("url", NON_PUBLIC_URLS + ODD_LOOPBACK_FORMS)
def test_non_public_targets_are_allowed_with_allow_private(url: str) -> None:
    assert validate_reply_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/hook",
        "http://93.184.216.34:8080/hooks?task=1#frag",
        "https://example.com/webhooks/vidmorph",
        "HTTPS://Example.COM/x",
        "https://bücher.example/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
        "https://[2002:5db8:d822::1]/hook",
        "https://my_host.example.com/hook",
    ],
)
def test_public_targets_are_accepted_and_returned_unchanged(url: str) -> None:
    assert validate_reply_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "absolute http(s) URL"),
        ("javascript:alert(1)", "absolute http(s) URL"),
        ("file:///etc/passwd", "absolute http(s) URL"),
        ("example.com/hook", "absolute http(s) URL"),
        ("//example.com/hook", "absolute http(s) URL"),
        ("http:/example.com/hook", "absolute http(s) URL"),
        ("http:///hook", "absolute http(s) URL"),
        ("", "absolute http(s) URL"),
        ("http://user:pass@example.com/hook", "user name or password"),
        ("http://user@example.com/hook", "user name or password"),
        ("http://@example.com/hook", "user name or password"),
        ("http://example.com\\@10.0.0.1/hook", "backslashes"),
        ("http://exa mple.com/hook", "spaces"),
        ("http://example.com/\nhook", "control characters"),
        ("http://example.com:0/hook", "port"),
        ("http://example.com:70000/hook", "port"),
        ("http://%6c%6fcalhost/hook", "not a valid host name"),
        ("http://a..b.example/hook", "not a valid host name"),
        ("http://[fe80::1%25eth0]/hook", "zone"),
    ],
)
def test_malformed_urls_are_rejected_with_a_clear_message(url: str, message: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
            validate_reply_url(url, allow_private=allow_private)


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.999/",
        "http://256.1.1.1/",
        "http://08.1.1.1/",
        "http://0177.0.0.1/",
        "http://1.2.3.4.5/",
        "http://1.2.3.0x100/",
        "http://0x1g.1/",
        "http://example.123/",
    ],
)
def test_hosts_that_look_numeric_but_are_no_valid_address_are_rejected(url: str) -> None:
    # Resolvers disagree on these; refusing them outright leaves nothing to guess.
    with pytest.raises(BadRequest, match=r"(?i)\bIP(v4)? address"):
        validate_reply_url(url, allow_private=True)


def test_urls_longer_than_1024_characters_are_rejected() -> None:
    base = "https://example.com/"
    assert validate_reply_url(base + "a" * (1024 - len(base)), allow_private=False)
    with pytest.raises(BadRequest, match="at most 1024 characters"):
        validate_reply_url(base + "a" * (1025 - len(base)), allow_private=False)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("93.184.216.34.", "93.184.216.34"),
        ("example.com", None),
        ("1.example", None),
    ],
)
def test_ip_hosts_are_read_the_way_the_os_reads_them(host: str, expected: str | None) -> None:
    address = guard.parse_ip_host(host)
    assert (None if address is None else str(address)) == expected


def test_resolving_an_ip_literal_needs_no_dns_and_returns_the_canonical_address() -> None:
    assert resolve_target("https://93.184.216.34/hook", allow_private=False) == ["93.184.216.34"]
    assert resolve_target("http://0x7f.1:8080/", allow_private=True) == ["127.0.0.1"]


def test_resolving_localhost_is_refused_unless_allowed() -> None:
    with pytest.raises(TargetRefused) as raised:
        resolve_target("http://localhost:8080/hook", allow_private=False)
    assert not raised.value.retryable
    assert "private or loopback" in raised.value.message
    assert "127.0.0.1" in resolve_target("http://localhost:8080/hook", allow_private=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://[::ffff:7f00:1]/", "http://2130706433/"]
)
def test_resolving_a_loopback_literal_is_refused_and_not_retryable(url: str) -> None:
    with pytest.raises(TargetRefused) as raised:
        resolve_target(url, allow_private=False)
    assert raised.value.retryable is False


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer getaddrinfo from `answers`; an unknown name fails the way NXDOMAIN does."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_a_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {"mixed.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(TargetRefused) as raised:
        resolve_target("https://mixed.example/hook", allow_private=False)
    assert not raised.value.retryable
    assert "10.0.0.7" not in raised.value.message  # internal addresses are not disclosed


def test_a_name_with_only_public_addresses_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_dns(
        monkeypatch, {"hooks.example": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]}
    )
    addresses = resolve_target("https://Hooks.Example/hook", allow_private=False)
    assert addresses == ["93.184.216.34", "2606:2800:220:1::1"]
    assert asked == ["hooks.example"]


def test_a_name_resolving_to_a_mapped_private_v6_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_dns(monkeypatch, {"sneaky.example": ["::ffff:169.254.169.254"]})
    with pytest.raises(TargetRefused):
        resolve_target("https://sneaky.example/", allow_private=False)


def test_an_unresolvable_host_is_refused_as_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(monkeypatch, {})
    with pytest.raises(TargetRefused) as raised:
        resolve_target("https://gone.example/hook", allow_private=True)
    assert raised.value.retryable is True
    assert "did not resolve" in raised.value.message


def test_send_time_check_also_refuses_malformed_urls() -> None:
    with pytest.raises(TargetRefused) as raised:
        resolve_target("ftp://example.com/", allow_private=True)
    assert not raised.value.retryable
