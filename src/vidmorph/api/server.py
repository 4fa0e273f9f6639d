"""The HTTP server: uvicorn's settings in one place, and a protocol that bounds request heads.

`vidmorph serve` (one process or `--processes N`), the tests and the benchmarks all start
uvicorn with `uvicorn_options(settings)`, so they measure and test the same server.

uvicorn's httptools protocol reads a request's line and headers in full, however large, and
never times them out. `BoundedHttpTools` counts the bytes of each request head before the
parser sees them and answers 431 in the contract's envelope past `max_header_bytes`; a head not
complete `header_timeout_s` after its first byte (or after the connection opened) gets 408.
Request bodies are bounded and timed out by the app (`api/bodies.py`).
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vidmorph.config import Settings

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _Limits:
    """Set by `uvicorn_options` in every process that serves (children of --processes too:
    their app factory builds the options from the same environment)."""

    max_head_bytes = 64 * 1024
    head_timeout_s = 10.0


LIMITS = _Limits()


class BoundedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_seen = 0
        self._heads_done = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        if self._head_timer is None:  # the first bytes of the next request on this connection
            self._arm_head_timer()
        room = LIMITS.max_head_bytes - self._head_seen
        if len(data) <= room:
            self._head_seen += len(data)
            super().data_received(data)
            return
        # Feed no more than the head may hold; if that did not finish it, refuse.
        done = self._heads_done
        self._head_seen += room
        super().data_received(data[:room])
        if self._heads_done == done:
            if not self.transport.is_closing():
                self._refuse(431, f"Request headers are larger than {LIMITS.max_head_bytes} bytes.")
            return
        self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads_done += 1
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_seen = True, 0

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(LIMITS.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            if self._head_seen:
                self._refuse(408, "The request line and headers took too long to arrive.")
            else:
                self.transport.close()  # connected and said nothing: just hang up

    def _refuse(self, status: int, message: str) -> None:
        body = json.dumps({"error": message, "code": status}).encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
        )
        self.transport.write(head + body)
        self.transport.close()


def freeze_heap() -> None:
    """Once started: everything loaded so far (the framework, the engines' and moderation's
    modules, the moderation classifier) lives as long as the process, so keep it out of the
    collector's full passes, which would otherwise walk all of it and stall every request
    now and then. Its big containers (word lists, the classifier's vocabulary, the routes'
    schemas) hold hundreds of thousands of entries: measured under POST load with the
    classifier loaded after the freeze, a full pass every ~0.6 s took ~47 ms of the GIL and
    the p99 latency was 83 ms; with it frozen too, 3-7 ms and 40 ms."""
    gc.collect()
    gc.freeze()


def configure_limits(settings: Settings) -> None:
    """The head limits of this process's BoundedHttpTools connections."""
    LIMITS.max_head_bytes = settings.max_header_bytes
    LIMITS.head_timeout_s = settings.header_timeout_s


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` from the settings."""
    configure_limits(settings)
    return {
        "host": settings.host,
        "port": settings.port,
        "http": BoundedHttpTools,
        "timeout_keep_alive": int(settings.keep_alive_s),
        "limit_concurrency": settings.max_connections,
        "backlog": settings.backlog,
        "access_log": settings.access_log,
        "log_level": "info",
        "server_header": False,
    }
