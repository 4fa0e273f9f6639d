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


async def chunks(request: Request, idle_timeout_s: float, max_bytes: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; RequestTimeout after `idle_timeout_s` without one,
    PayloadTooLarge (413) once more than `max_bytes` came or were announced."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise errors.PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
    stream = request.stream().__aiter__()
    size = 0
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), idle_timeout_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise errors.RequestTimeout(
                f"The request body stalled: nothing arrived for {idle_timeout_s:g} s."
            ) from None
        size += len(chunk)
        if size > max_bytes:
            raise errors.PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
        if chunk:
            yield chunk


async def read_all(request: Request, idle_timeout_s: float, max_bytes: int) -> bytes:
    """The whole (small) body, bounded as `chunks` bounds it."""
    parts = [chunk async for chunk in chunks(request, idle_timeout_s, max_bytes)]
    return b"".join(parts)
