"""A real HTTP receiver on 127.0.0.1 for tests: records every request, answers as configured.

Use as `with Receiver(fail_first=2) as receiver: ... receiver.wait_for_count(3, timeout_s=5)`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    #: path with query string, as sent
    path: str
    #: header names lower-cased; a repeated header keeps its last value
    headers: dict[str, str]
    body: bytes
    #: time.time() when the request had been read
    received_at_s: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A threaded loopback HTTP server that answers `status` (500 to the first `fail_first`).

    It waits `delay_s` before answering, or `path_delays[path]` for a path named there.
    `status`, `fail_first`, `delay_s` and `response_headers` may be changed while it runs.
    A delayed answer is cut short when the receiver stops, so tests never wait for it.
    """

    def __init__(
        self,
        *,
        status: int = 200,
        fail_first: int = 0,
        delay_s: float = 0.0,
        path_delays: Mapping[str, float] | None = None,
        response_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.path_delays = dict(path_delays or {})
        self.response_headers = dict(response_headers or {})
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            # A short poll keeps stop() (which waits for the next poll) from costing 0.5 s a test.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="test-receiver",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._changed:
            return list(self._requests)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout_s: float
    ) -> bool:
        """Block until `predicate(requests)` holds; False if `timeout_s` passes first."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._requests), timeout=timeout_s)

    def wait_for_count(self, count: int, timeout_s: float) -> bool:
        return self.wait_for(lambda requests: len(requests) >= count, timeout_s)

    def _record(self, request: RecordedRequest) -> int:
        """Store a request and pick its status: 500 while fewer than fail_first came before."""
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            return 500 if len(self._requests) <= self.fail_first else self.status

    def _pause(self, path: str) -> None:
        delay_s = self.path_delays.get(path, self.delay_s)
        if delay_s > 0:
            self._stopping.wait(delay_s)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is what timeout tests do; anything else is shown.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at_s=time.time(),
            )
            status = receiver._record(recorded)
            receiver._pause(self.path)
            answer = json.dumps({"received": True}).encode()
            try:
                self.send_response(status)
                for name, value in receiver.response_headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up (a timeout test); nobody is left to answer

        do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean; `requests` is the record

    return Handler


def most_at_once(requests: list[RecordedRequest], delay_s: float) -> int:
    """The most requests a receiver that answers after `delay_s` was holding at one moment
    (a sender's next request to it can start only once its previous one was answered)."""
    starts = sorted(r.received_at_s for r in requests)
    return max(
        sum(1 for other in starts if start - delay_s * 0.9 < other <= start) for start in starts
    )


@contextmanager
def serve_files(directory: Path) -> Iterator[str]:
    """The files of `directory` over plain HTTP on 127.0.0.1; yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def dripping(answer: bytes, interval_s: float) -> Iterator[str]:
    """A server on 127.0.0.1 that reads each request, then sends `answer` one byte every
    `interval_s` (a receiver or file host that keeps a request alive while sending next to
    nothing); yields its base URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            for byte in answer:
                if stop.wait(interval_s):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what is being tested

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
