"""Pipeline stages on threads (`Prefetch`) and the frame streams between them (`ClipStream`)."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from vidmorph.errors import StageStopped
from vidmorph.media.clip import Clip, ClipStream
from vidmorph.media.stream import Prefetch


def counting(limit: int, log: list[str], pause_s: float = 0.0) -> Iterator[int]:
    try:
        for value in range(limit):
            log.append(f"made {value} on {threading.current_thread().name}")
            time.sleep(pause_s)
            yield value
    finally:
        log.append(f"closed on {threading.current_thread().name}")


def stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("stage-")]


def test_items_arrive_in_order_and_the_source_runs_on_its_own_thread() -> None:
    log: list[str] = []
    with Prefetch(counting(5, log), depth=2, name="stage-a") as items:
        assert list(items) == [0, 1, 2, 3, 4]
    assert log[0] == "made 0 on stage-a" and log[-1] == "closed on stage-a"
    assert not items.stop.is_set() and stage_threads() == []


def test_the_source_runs_at_most_depth_items_ahead() -> None:
    log: list[str] = []
    with Prefetch(counting(100, log), depth=2, name="stage-b") as items:
        assert next(items) == 0
        time.sleep(0.3)
        # One handed over, two queued, one made and waiting for room.
        assert len([line for line in log if line.startswith("made")]) <= 4
    assert log[-1] == "closed on stage-b" and stage_threads() == []


def test_an_error_in_the_source_is_raised_in_the_consumer_with_its_type() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise KeyError("frame 12")

    with Prefetch(failing(), depth=2, name="stage-c") as items:
        assert next(items) == 1
        with pytest.raises(KeyError, match="frame 12"):
            next(items)
        with pytest.raises(StopIteration):
            next(items)
    assert stage_threads() == []


def test_leaving_early_stops_the_source_promptly_and_sets_the_shared_flag() -> None:
    log: list[str] = []
    started = time.monotonic()
    with Prefetch(counting(10_000, log, pause_s=0.01), depth=2, name="stage-d") as items:
        next(items)
    assert time.monotonic() - started < 2.0
    assert items.stop.is_set() and log[-1] == "closed on stage-d"
    assert len(log) < 100 and stage_threads() == []


def test_a_stage_waiting_on_another_that_was_stopped_gets_stage_stopped() -> None:
    stop = threading.Event()
    never = threading.Event()

    def blocked() -> Iterator[int]:
        never.wait(timeout=5)  # a producer that has nothing yet
        yield 1

    upstream = Prefetch(blocked(), depth=1, name="stage-e", stop=stop)
    threading.Timer(0.2, stop.set).start()  # another stage fails elsewhere
    started = time.monotonic()
    with pytest.raises(StageStopped):
        next(upstream)
    assert time.monotonic() - started < 2.0
    never.set()
    upstream.close()
    assert stage_threads() == []


def test_a_clip_streams_as_views_and_collects_back() -> None:
    frames = np.arange(7 * 4 * 6 * 3, dtype=np.uint8).reshape(7, 4, 6, 3)
    stream = Clip(frames, 24.0).stream(3)
    assert (stream.num_frames, stream.width, stream.height) == (7, 6, 4)
    assert np.array_equal(stream.collect().frames, frames)
    assert [len(b) for b in Clip(frames, 24.0).stream(3).rebatched(2)] == [2, 2, 2, 1]


def test_rebatching_passes_batches_of_the_right_size_through_uncopied() -> None:
    frames = np.zeros((6, 4, 6, 3), dtype=np.uint8)
    batches = [frames[:3], frames[3:]]
    out = list(ClipStream(batches, 6, 6, 4, 24.0).rebatched(3))
    assert all(a is b for a, b in zip(out, batches, strict=True))


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ([np.zeros((2, 4, 6, 3), np.uint8)], "ended after 2 of its 3"),
        ([np.zeros((4, 4, 6, 3), np.uint8)], "more than its 3"),
        ([np.zeros((3, 4, 5, 3), np.uint8)], "6x4 rgb24 stream"),
    ],
)
def test_a_stream_that_breaks_its_promise_is_an_error(
    batches: list[np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ClipStream(batches, 3, 6, 4, 24.0).collect()


def test_a_failed_stage_keeps_no_batch_alive_once_its_error_is_handled() -> None:
    batch = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    alive = weakref.ref(batch)

    def failing(frames: np.ndarray) -> Iterator[np.ndarray]:
        yield frames
        raise RuntimeError("engine failed")

    source = failing(batch)
    del batch
    gc.disable()  # reference cycles would hide until a collection: there must be none
    try:
        with Prefetch(source, depth=1, name="stage-f") as items:
            del source
            next(items)
            with pytest.raises(RuntimeError):
                next(items)
        del items
        assert alive() is None
    finally:
        gc.enable()
