"""HTTP/1.1 messages read off a raw socket, for tests that must see the bytes themselves (a
receiver that answers a byte at a time, a client that sends a head the server must refuse)."""

from __future__ import annotations

import socket


def read_message(sock: socket.socket) -> tuple[str, dict[str, str], bytes] | None:
    """One request or response: its first line, its headers (names lower-cased) and its body
    (as much of Content-Length as arrived); None when the peer closed before a whole head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return first, headers, body
