"""Which replyUrls may receive callbacks: a syntax check at request time, an address check at send.

Private, loopback, link-local and other non-public targets are refused unless allow_private.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import TypeAlias

import httpx

from vidmorph.errors import BadRequest

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS = 1024
ALLOW_PRIVATE_SETTING = "VIDMORPH_CALLBACK_ALLOW_PRIVATE"
PRIVATE_MESSAGE = (
    "replyUrl points to a private or loopback address; "
    f"set {ALLOW_PRIVATE_SETTING}=true to allow it"
)
_SCHEMES = ("http", "https")
# What a DNS name may hold after IDNA encoding; '_' occurs in real names. IPv6 is checked apart.
_HOST_NAME = re.compile(r"[a-z0-9_.-]+")
# A last label like this makes the host an IPv4 address in the WHATWG URL standard and in
# inet_aton(), which getaddrinfo() uses: "2130706433", "0x7f.1" and "0177.1" are all 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_IPV4_PART = {16: re.compile(r"[0-9a-f]*"), 8: re.compile(r"[0-7]*"), 10: re.compile(r"[0-9]+")}
# Denied whatever the running Python's ipaddress tables say (they changed in 3.11.10/3.12.4).
_ALWAYS_DENIED = tuple(
    ipaddress.ip_network(net)
    for net in ("0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(Exception):
    """A callback target that must not be contacted now; `retryable` if asking later may work."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def validate_reply_url(url: str, *, allow_private: bool) -> str:
    """Check a replyUrl at request time, without DNS; return it unchanged or raise BadRequest.

    Hosts that are IP literals (in any form an OS accepts) or localhost names are checked here;
    other names are checked after resolution, at send time, by `resolve_target`.
    """
    try:
        host, _port = _parse(url)
        address = parse_ip_host(host)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    if not allow_private and (
        _is_localhost_name(host) or (address is not None and is_denied_address(address))
    ):
        raise BadRequest(PRIVATE_MESSAGE)
    return url


def resolve_target(url: str, *, allow_private: bool) -> list[str]:
    """The addresses to connect to for `url`, each one allowed; else raise TargetRefused.

    Every resolved address must pass, so a name with one private record is refused as a whole.
    """
    try:
        host, port = _parse(url)
        literal = parse_ip_host(host)
    except ValueError as exc:
        raise TargetRefused(str(exc)) from exc
    if literal is not None:
        addresses = [literal]
    else:
        if not allow_private and _is_localhost_name(host):
            raise TargetRefused(PRIVATE_MESSAGE)
        addresses = _resolve(host, port)
    if not allow_private and any(is_denied_address(address) for address in addresses):
        # The address itself stays out of the message: it may be stored and shown to the user,
        # and it would tell them how our internal DNS names resolve.
        raise TargetRefused(PRIVATE_MESSAGE)
    return list(dict.fromkeys(str(address) for address in addresses))


def is_denied_address(address: IPAddress) -> bool:
    """Whether an address is anything but public unicast, looking inside v6 forms that embed v4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or _nat64_embedded(address)
        if embedded is not None and is_denied_address(embedded):
            return True
        if address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or any(address in network for network in _ALWAYS_DENIED)
    )


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a URL host denotes if it is an IP literal in any form, None for a DNS name.

    Raises ValueError for a host that looks numeric but is no valid address ("1.2.3.999"):
    resolvers disagree on such names, so none of them is trusted.
    """
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError("replyUrl host is not a valid IPv6 address") from exc
    labels = host.removesuffix(".").split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if len(labels) > 4 or None in numbers:
        raise ValueError("replyUrl host looks like an IP address but is not a valid one")
    *leading, last = [number for number in numbers if number is not None]
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        raise ValueError("replyUrl host looks like an IP address but is not a valid one")
    value = last + sum(number << (8 * (3 - index)) for index, number in enumerate(leading))
    return ipaddress.IPv4Address(value)


def _parse(url: str) -> tuple[str, int]:
    """The URL's host (lower-case, IDNA-encoded) and port, after checks that need no network."""
    if not isinstance(url, str):
        raise ValueError("replyUrl must be a string")
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"replyUrl must be at most {MAX_URL_CHARS} characters")
    # Whitespace, control characters and backslashes are read differently by different URL
    # parsers; refusing them means the host we check is the host httpx connects to.
    if any(ord(char) <= 0x20 or ord(char) == 0x7F or char == "\\" for char in url):
        raise ValueError("replyUrl must not contain spaces, control characters or backslashes")
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in _SCHEMES:
        raise ValueError("replyUrl must be an absolute http(s) URL")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"replyUrl is not a valid URL: {exc}") from exc
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if parsed.userinfo or "@" in authority:
        raise ValueError("replyUrl must not contain a user name or password")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise ValueError("replyUrl must be an absolute http(s) URL")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError("replyUrl port must be between 1 and 65535")
    if ":" in host:
        if "%" in host:
            raise ValueError("replyUrl must not give an IPv6 zone")
    elif not _HOST_NAME.fullmatch(host) or ".." in host or host.startswith("."):
        raise ValueError("replyUrl host is not a valid host name")
    return host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _is_localhost_name(host: str) -> bool:
    # RFC 6761: every name under .localhost is loopback, whatever DNS says.
    name = host.removesuffix(".")
    return name == "localhost" or name.endswith(".localhost")


def _ipv4_number(label: str) -> int | None:
    if label.startswith("0x"):
        digits, base = label[2:], 16
    elif len(label) > 1 and label.startswith("0"):
        digits, base = label[1:], 8
    else:
        digits, base = label, 10
    if not _IPV4_PART[base].fullmatch(digits):
        return None
    return int(digits, base) if digits else 0


def _nat64_embedded(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # Name errors may be a DNS outage or a record not yet published: worth asking again.
        raise TargetRefused(f"replyUrl host {host} did not resolve: {exc}", retryable=True) from exc
    except (UnicodeError, OSError) as exc:
        raise TargetRefused(f"replyUrl host {host} cannot be resolved: {exc}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # Link-local v6 answers carry a "%zone"; it is dropped, so such targets (allowed only
        # with allow_private) may not connect, which is no loss for a webhook receiver.
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise TargetRefused(f"replyUrl host {host} has no addresses", retryable=True)
    return addresses
