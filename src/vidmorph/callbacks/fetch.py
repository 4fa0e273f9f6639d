"""Fetching a client's media by URL (Runway's `videoUri: https://...`) under the callback guard.

Runway's rule: the URL is https (plain http only where private targets are allowed); then the
same rules as callbacks: the URL's addresses are resolved and checked (private, loopback
and link-local targets refused unless allowed), the connection goes to an approved address
(no second lookup, so DNS rebinding cannot reach a private one), redirects are not followed,
and the body is streamed to a file with a size limit, an idle timeout and a total deadline
(a server that drips a byte at a time cannot hold a thread for longer).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from vidmorph.callbacks.deadline import Deadline
from vidmorph.callbacks.guard import TargetRefused, resolve_target
from vidmorph.errors import BadRequest


def fetch_to_file(
    url: str,
    dest: Path,
    *,
    allow_private: bool,
    max_bytes: int,
    timeout_s: float = 30.0,
    total_s: float = 300.0,
) -> str:
    """GET `url` into `dest`; the response's Content-Type. BadRequest for a refused target, an
    answer that is not a 200, a fetch past `total_s` or a file past `max_bytes` (`dest` is
    then removed): the request was fine, what it names is not usable, as Runway answers it."""
    # Plain http only where private targets are allowed (a loopback test server, a LAN): the
    # scheme is refused before any name is resolved, so a refused URL causes no DNS lookup.
    schemes = ("https://", "http://") if allow_private else ("https://",)
    if not url.lower().startswith(schemes):
        raise BadRequest("videoUri must be an https URL, a runway:// URI or a data URI.")
    try:
        addresses = resolve_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise BadRequest(f"videoUri: {exc.message.replace('replyUrl', 'the URL')}") from None
    target = httpx.URL(url)
    with (
        Deadline(total_s) as deadline,
        httpx.Client(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False
        ) as client,
    ):
        last: Exception | None = None
        for address in addresses:
            try:
                return _get(client, target, address, dest, max_bytes, deadline)
            except httpx.HTTPError as exc:
                if deadline.expired:
                    dest.unlink(missing_ok=True)
                    raise BadRequest(f"videoUri took longer than {total_s:g} s.") from None
                if not isinstance(exc, httpx.ConnectError):
                    dest.unlink(missing_ok=True)
                    raise BadRequest(
                        f"videoUri could not be fetched: {type(exc).__name__}"
                    ) from None
                last = exc
    raise BadRequest(f"videoUri could not be fetched: {last}")


def _get(
    client: httpx.Client,
    target: httpx.URL,
    address: str,
    dest: Path,
    max_bytes: int,
    deadline: Deadline,
) -> str:
    request = client.build_request(
        "GET",
        target.copy_with(host=address),
        headers={"host": target.netloc.decode("ascii")},
        extensions={"sni_hostname": target.raw_host.decode("ascii"), "trace": deadline.trace},
    )
    response = client.send(request, stream=True)
    try:
        if response.status_code != 200:
            raise BadRequest(f"videoUri answered HTTP {response.status_code}.")
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > max_bytes:
            raise BadRequest(f"videoUri is larger than {max_bytes} bytes.")
        if not write_capped(response, dest, max_bytes):
            raise BadRequest(f"videoUri is larger than {max_bytes} bytes.")
        return str(response.headers.get("content-type", ""))
    finally:
        response.close()


def write_capped(response: httpx.Response, dest: Path, max_bytes: int) -> bool:
    """Stream `response`'s body into `dest`; False once it passes `max_bytes`. `dest` is
    removed then, and on any error while reading or writing."""
    seen = 0
    try:
        with dest.open("wb") as out:
            for chunk in response.iter_bytes():
                seen += len(chunk)
                if seen > max_bytes:
                    break
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if seen > max_bytes:
        dest.unlink(missing_ok=True)
        return False
    return True
