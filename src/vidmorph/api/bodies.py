"""Request bodies read with a size limit and a stall timeout.

A client that stops sending halfway through a body would otherwise hold its connection, and an
upload's temp file, for ever: each wait for the next chunk is bounded by `body_timeout_s`, past
which the request gets 408 (and the upload's temp file is removed by its caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request

from vidmorph import errors

#: how far a stall deadline may lag the last chunk before it is moved (moving it costs a timer;
#: a body that arrives in one go moves it never)
_SLACK_S = 0.05


async def chunks(
    request: Request, idle_timeout_s: float, max_bytes: int, min_rate: float = 0
) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; RequestTimeout after `idle_timeout_s` without one,
    or once the body has come slower than `min_rate` bytes a second on average past its
    first `idle_timeout_s` (a slow start is fine; a trickle of a byte every few seconds never
    stalls, but would hold the connection and the upload's file for days); PayloadTooLarge
    (413) once more than `max_bytes` came or were announced."""
    _refuse_declared(request, max_bytes)
    stream = request.stream().__aiter__()
    size = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            # asyncio.timeout, not wait_for: no Task made for every chunk
            async with asyncio.timeout(idle_timeout_s):
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _stalled(idle_timeout_s) from None
        size += len(chunk)
        _refuse_size(size, max_bytes)
        elapsed_s = loop.time() - started
        if min_rate and elapsed_s > idle_timeout_s and size < min_rate * elapsed_s:
            raise errors.RequestTimeout(
                f"The request body is arriving at {size / elapsed_s:.0f} bytes/s; this server "
                f"needs at least {min_rate:g}."
            )
        if chunk:
            yield chunk


async def read_all(request: Request, idle_timeout_s: float, max_bytes: int) -> bytes:
    """The whole (small) body, bounded as `chunks` bounds it: one timeout, moved on when a
    chunk comes more than _SLACK_S after the last move (the hot paths' JSON bodies arrive in
    one, and move it never)."""
    _refuse_declared(request, max_bytes)
    loop = asyncio.get_running_loop()
    parts, size = [], 0
    try:
        async with asyncio.timeout(idle_timeout_s) as deadline:
            async for chunk in request.stream():
                size += len(chunk)
                _refuse_size(size, max_bytes)
                parts.append(chunk)
                due = loop.time() + idle_timeout_s
                when = deadline.when()
                if chunk and when is not None and due - when > _SLACK_S:
                    deadline.reschedule(due)
    except TimeoutError:
        raise _stalled(idle_timeout_s) from None
    return b"".join(parts)


def _refuse_declared(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        _refuse_size(int(declared), max_bytes)


def _refuse_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise errors.PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")


def _stalled(idle_timeout_s: float) -> errors.RequestTimeout:
    return errors.RequestTimeout(
        f"The request body stalled: nothing arrived for {idle_timeout_s:g} s."
    )
