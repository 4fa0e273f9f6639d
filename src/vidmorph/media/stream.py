"""Pipeline stages on their own threads, with a bounded queue between each and the next.

`Prefetch` runs an iterator (a decoder, an engine) on a thread at most `depth` items ahead
of its consumer, so decode, engine and encode overlap and memory holds a few batches per
stage. Stages of one pipeline share a `threading.Event`: whichever ends early sets it, every
other stage sees it at its next hand-over and stops, and each thread is joined before its
stage is left, so nothing keeps running or holding frames after a failure.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from vidmorph.errors import StageStopped

T = TypeVar("T")

#: how often a stage blocked on a queue looks at the shared stop flag
POLL_S = 0.05


class Prefetch(Generic[T]):
    """Iterates `source` on a thread named `name`; iterating this yields its items in order.

    An exception in the source is raised in the consumer where its item would have come.
    `close()` (or leaving the `with` block) before the end sets `stop`, lets the thread see it
    at its next hand-over, closes the source there (its `finally` blocks run on its own
    thread) and joins it. A consumer waiting on a stage that another stage stopped gets
    `StageStopped`.
    """

    def __init__(
        self,
        source: Iterable[T],
        *,
        depth: int,
        name: str,
        stop: threading.Event | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.stop = stop if stop is not None else threading.Event()
        self._source = source
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        iterator = None
        try:
            iterator = iter(self._source)
            for item in iterator:
                handed = self._put(("item", item))
                del item  # the consumer's now: a failure's traceback must not keep it
                if not handed:
                    return
            self._put(("end", None))
        except BaseException as error:  # handed to the consumer, raised there
            self._put(("error", error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, message: tuple[str, object]) -> bool:
        while not self.stop.is_set():
            try:
                self._queue.put(message, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                kind, value = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self.stop.is_set():
                    raise StageStopped() from None
                continue
            if kind == "item":
                return value  # type: ignore[return-value]
            self._finished = True
            if kind == "end":
                raise StopIteration
            assert isinstance(value, BaseException)
            try:
                raise value
            finally:
                del value  # no frame -> error -> traceback -> frame cycle holding batches

    def close(self) -> None:
        """Join the thread; if the consumer left before the stream's end, stop the pipeline
        first (the shared flag) and free what the thread queued."""
        if not self._finished:
            self.stop.set()
        self._drain()
        self._thread.join()
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
