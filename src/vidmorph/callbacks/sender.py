"""One signed callback POST to a guarded replyUrl, reported as a DeliveryResult and never raised.

Retries, backoff and expiry belong to the caller; `DeliveryResult.retryable` tells it what to do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import TracebackType

import httpx

from vidmorph.callbacks import signing
from vidmorph.callbacks.deadline import Deadline
from vidmorph.callbacks.guard import TargetRefused, resolve_target

# The receiver may be overloaded (5xx), too slow for itself (408) or rate-limiting us (429).
_RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    #: the receiver's HTTP status, None when no response came back
    status_code: int | None
    error: str | None
    #: whether the same delivery may succeed if tried again later
    retryable: bool


class CallbackSender:
    """Delivers callbacks over one pooled httpx.Client; safe to share between worker threads.

    The connection goes to an address `resolve_target` approved, not to a second lookup of the
    name, so a DNS answer that changes between check and connect (rebinding) cannot reach a
    private address. The name still goes in the Host header and, for https, in SNI and the
    certificate check. `timeout_s` bounds each phase (connect, send, each read), `total_s`
    the whole attempt (a receiver that drips its answer a byte at a time holds no thread longer).
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float = 10.0,
        total_s: float = 30.0,
        user_agent: str = "Vidmorph-Webhooks/0.1",
    ) -> None:
        self._allow_private = allow_private
        self._total_s = total_s
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            # A redirect would lead to a target the guard never saw; it is reported instead.
            follow_redirects=False,
            # Proxy variables would send deliveries around the address check.
            trust_env=False,
            # Pooled connections are keyed by address only; reusing one opened (and whose
            # certificate was checked) for another host name on the same address would skip
            # that name's check. Callbacks are few, so a fresh connection each is cheap.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"user-agent": user_agent},
        )

    def send(
        self,
        url: str,
        body: bytes,
        *,
        secret: str,
        msg_id: str,
        timestamp_s: int | None = None,
    ) -> DeliveryResult:
        """POST `body` to `url` signed with `secret`; `timestamp_s` defaults to now."""
        try:
            addresses = resolve_target(url, allow_private=self._allow_private)
        except TargetRefused as exc:
            return DeliveryResult(
                ok=False, status_code=None, error=exc.message, retryable=exc.retryable
            )
        signed_at_s = int(time.time()) if timestamp_s is None else timestamp_s
        try:
            webhook_headers = signing.headers(secret, msg_id, signed_at_s, body)
        except ValueError as exc:
            # A stored secret that does not decode stays broken; the message never quotes it.
            return DeliveryResult(ok=False, status_code=None, error=str(exc), retryable=False)
        target = httpx.URL(url)
        connect_error: httpx.ConnectError | None = None
        for address in addresses:
            try:
                return self._post(target, address, body, webhook_headers)
            except httpx.ConnectError as exc:
                # Only a failed connect says another address of the same name may do better.
                connect_error = exc
        return _network_failure(f"could not connect: {connect_error}")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CallbackSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _post(
        self, target: httpx.URL, address: str, body: bytes, webhook_headers: dict[str, str]
    ) -> DeliveryResult:
        """One attempt at one address; raises httpx.ConnectError so `send` can try the next."""
        deadline = Deadline(self._total_s)
        request = self._client.build_request(
            "POST",
            target.copy_with(host=address),
            content=body,
            headers={**webhook_headers, "host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.raw_host.decode("ascii"), "trace": deadline.trace},
        )
        try:
            # Streamed and closed unread: the receiver's body is of no use and may be large.
            with deadline:
                response = self._client.send(request, stream=True)
                response.close()
        except httpx.ConnectError:
            if deadline.expired:
                return _network_failure(f"took longer than {self._total_s:g} s")
            raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if deadline.expired:
                return _network_failure(f"took longer than {self._total_s:g} s")
            return _failure(exc)
        return _classify(response.status_code)


def _failure(exc: httpx.HTTPError | httpx.InvalidURL) -> DeliveryResult:
    if isinstance(exc, httpx.TimeoutException):
        return _network_failure(f"timed out: {type(exc).__name__}")
    if isinstance(exc, httpx.TransportError):
        return _network_failure(f"{type(exc).__name__}: {exc}")
    return DeliveryResult(ok=False, status_code=None, error=str(exc), retryable=False)


def _network_failure(error: str) -> DeliveryResult:
    # Nothing reached the receiver (or its answer was lost): the same request may work later.
    return DeliveryResult(ok=False, status_code=None, error=error, retryable=True)


def _classify(status_code: int) -> DeliveryResult:
    if 200 <= status_code < 300:
        return DeliveryResult(ok=True, status_code=status_code, error=None, retryable=False)
    if 300 <= status_code < 400:
        # Redirects are not followed (see __init__); a receiver that redirects will do so again,
        # so this waits for its owner to fix the replyUrl rather than retrying.
        error = f"receiver answered {status_code}; redirects are not followed"
        return DeliveryResult(ok=False, status_code=status_code, error=error, retryable=False)
    retryable = status_code >= 500 or status_code in _RETRYABLE_STATUSES
    # Any other 4xx means the receiver looked at this delivery and rejected it (bad signature,
    # unknown path, gone): sending the same bytes again would be rejected again.
    error = f"receiver answered {status_code}"
    return DeliveryResult(ok=False, status_code=status_code, error=error, retryable=retryable)
