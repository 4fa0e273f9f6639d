"""Standard Webhooks signatures: `whsec_` secrets and `v1,<base64 HMAC-SHA256>` headers.

Signed content is "{webhook-id}.{webhook-timestamp}.{body}", keyed with the secret's decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
_SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh per-user secret, "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    # Receivers' libraries accept the secret with or without its prefix; so do we.
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not whsec_<base64>") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _digest_b64(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The `webhook-signature` header value, "v1,<base64>"; raises ValueError for a bad secret."""
    return f"{SIGNATURE_VERSION},{_digest_b64(_key(secret), msg_id, timestamp_s, body)}"


def verify(
    secret: str,
    msg_id: str,
    timestamp_s: int,
    body: bytes,
    header_value: str,
    *,
    tolerance_s: int = 300,
    now_s: float | None = None,
) -> bool:
    """Whether any space-separated "v1,<sig>" in `header_value` signs this message.

    A timestamp further than `tolerance_s` from now (either way) fails, so a captured delivery
    cannot be replayed later. Raises ValueError only for a malformed secret.
    """
    now = time.time() if now_s is None else now_s
    if abs(now - timestamp_s) > tolerance_s:
        return False
    expected = _digest_b64(_key(secret), msg_id, timestamp_s, body).encode("ascii")
    matched = False
    for candidate in header_value.split():
        version, _, signature = candidate.partition(",")
        # Look at every candidate so the time taken does not say which one matched.
        if version == SIGNATURE_VERSION and hmac.compare_digest(signature.encode(), expected):
            matched = True
    return matched


def headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The three webhook-* headers for one delivery attempt, plus its content type."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": sign(secret, msg_id, timestamp_s, body),
        "content-type": "application/json",
    }
