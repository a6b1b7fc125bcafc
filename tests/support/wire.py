"""HTTP/1.1 over a raw socket, for tests that must decide what a client sends and when: a body
that stops after one byte, a body too large to send whole, headers that never end."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

WAIT = 60.0
"""Seconds, at most, to wait for an answer: a ceiling for a loaded machine, not an
expectation; the waits end as soon as the answer is there."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), WAIT)
    sock.settimeout(WAIT)
    return sock


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    """A request's start line and headers (Host included), ready to send."""
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: blastwall.test",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def start(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> socket.socket:
    """A connection on which the request's headers, and `body` (maybe a part of it), are sent."""
    sock = connect(url)
    sock.sendall(head(method, path, headers) + body)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """The server's answer on `sock` (its body read as far as its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed the connection without an answer: {data!r}")
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body[:length])


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (after any answer already read)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def untouched(sock: socket.socket) -> bool:
    """Whether the connection is still open with nothing sent back by the server yet."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def send_chunked_until_answered(sock: socket.socket, *, total: int, chunk: bytes) -> int:
    """Send `chunk` as HTTP chunks until `total` bytes are sent or the server answers (or
    closes); answer the bytes sent. The final empty chunk is sent only after all of them."""
    sent = 0
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                return sent
            sock.sendall(framed)
            sent += len(chunk)
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent
