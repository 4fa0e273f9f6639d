"""A total deadline on one httpx exchange, whatever the other end does.

httpx's timeouts bound each phase (connect, each read, each write), so a server that sends a
byte every few seconds, in its headers or its body, keeps a request going for days. `Deadline`
ends it: its `trace` hook (httpx's `trace` request extension) keeps the sockets the exchange
opens, and a timer shuts them down at the deadline, which makes the blocked read fail at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Any


class Deadline:
    """`with Deadline(total_s) as d:` then send with `extensions={"trace": d.trace}`; after an
    error, `d.expired` tells whether the deadline caused it."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._expired = False
        self._timer = threading.Timer(total_s, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        return self._expired

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            late = self._expired
        if late:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already: the exchange is over
        sock.shutdown(socket.SHUT_RDWR)
