"""How a request gets in: what the server does before any route runs, and the bounds that
keep a client without a token, or a slow one, from costing it memory or its write slot.

    the request's headers arrive     within BLASTWALL_HEADER_TIMEOUT (`HeaderTimeoutProtocol`,
                                     the HTTP protocol `blastwall serve` runs)
    authentication from the headers  no valid token (or ingest key): 401, no byte of the body
                                     read; counted, not audited (`FailedAuthentications`)
    the body, read in full           at most the route's limit (`BodyLimits`): 413 as soon as
                                     Content-Length, or the bytes that came, pass it, chunked or
                                     not; it must keep arriving (`read_body`): else 408
    then the route                   on SQLite, in the write slot, which is taken only now

The middleware that runs these steps in order is `api._Gate`; this module holds the pieces.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from starlette.routing import compile_path
from starlette.types import Message, Receive, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from blastwall.errors import PayloadTooLarge, RequestTimeout
from blastwall.settings import Settings

MiB = 1024 * 1024
TEXT_BODY_BYTES = 4 * MiB
"""Limit of the routes that carry up to 200,000 characters of text (a held output, a
reproduction's input and result), which JSON may escape to 6 bytes each."""
KEEP_ALIVE_SECONDS = 5
"""How long `blastwall serve` keeps an idle connection open between two requests (uvicorn's
`timeout_keep_alive`, its default)."""
NO_TOKEN_PATHS = frozenset({"/api/v1/health", "/openapi.json", "/docs", "/redoc", "/status"})
"""Paths that need no token (with the docs pages' assets under /docs/ and the public status
page under /status/)."""
NO_TOKEN_PREFIXES = ("/docs/", "/status/", "/ui/static/")
UI_PREFIX = "/ui/"
UI_SIGN_IN = "/ui/login"
"""The web interface's requests carry a session cookie instead of a token; signing in (with
a token in a form) needs neither."""


def needs_token(path: str) -> bool:
    return (
        path not in NO_TOKEN_PATHS and path != UI_SIGN_IN and not path.startswith(NO_TOKEN_PREFIXES)
    )


def from_browser(path: str) -> bool:
    """Whether a request is the web interface's, authenticated by its session cookie."""
    return path.startswith(UI_PREFIX)


def bearer_token(scope: Scope) -> str | None:
    """The credentials of an `Authorization: Bearer ...` header, as FastAPI's HTTPBearer
    reads them."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


def has_body(scope: Scope) -> bool:
    """Whether the request's framing announces a body (a Content-Length above 0, or chunks)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


# --- limits -----------------------------------------------------------------------------------


def route_limits(settings: Settings) -> dict[str, tuple[int, str]]:
    """The routes whose bodies may be larger than `max_body_bytes`, by route template, each
    with its limit and what to do about a body over it; every other route takes
    `max_body_bytes`."""
    text = max(settings.max_body_bytes, TEXT_BODY_BYTES)
    batches = "Send smaller batches (the exporter's or webhook's batch size)."
    imports = "Split the declarations over several requests."
    return {
        "/v1/traces": (settings.ingest_max_body_bytes, batches),
        "/api/v1/ingest/alertmanager": (settings.ingest_max_body_bytes, batches),
        "/api/v1/systems": (settings.import_max_body_bytes, imports),
        "/api/v1/systems/cyclonedx": (settings.import_max_body_bytes, imports),
        "/api/v1/incidents/{incident_id}/evidence/files": (
            settings.evidence_max_upload_bytes,
            "Add a larger file with `blastwall evidence add` on the server.",
        ),
        "/api/v1/incidents/{incident_id}/evidence/reproductions": (text, ""),
        "/api/v1/controls/held": (text, ""),
    }


class BodyLimits:
    """The most bytes a request body may have, per route, matched on the path before routing
    (the route templates compiled as Starlette compiles them). tests/security/
    test_body_limits.py checks that every template names a route of the app."""

    def __init__(self, default: int, limits: dict[str, tuple[int, str]]) -> None:
        self.default = default
        self._routes = [
            (compile_path(template)[0], limit, hint) for template, (limit, hint) in limits.items()
        ]

    def limit(self, path: str) -> tuple[int, str]:
        """The path's limit in bytes, and what to do about a body over it."""
        for pattern, limit, hint in self._routes:
            if pattern.match(path):
                return limit, hint
        return self.default, ""


# --- the body ---------------------------------------------------------------------------------


async def read_body(
    receive: Receive, *, limit: int, hint: str = "", timeout: float, min_rate: int
) -> bytes | None:
    """The request's whole body, or None when the client went away first.

    `PayloadTooLarge` as soon as more than `limit` bytes have come (nothing more is read);
    `RequestTimeout` when no part arrives for `timeout` seconds, or when, after the first
    `timeout` seconds, the body averages under `min_rate` bytes a second (the deadline is
    `timeout` seconds plus one for every `min_rate` bytes received, as Apache's
    mod_reqtimeout has it)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    chunks: list[bytes] = []
    size = 0
    while True:
        now = loop.time()
        deadline = min(now + timeout, start + timeout + size / min_rate)
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body stopped arriving ({size} bytes in {now - start:.0f} s). "
                f"Send it without pauses over {timeout:g} s, at {min_rate} bytes a second or "
                "more."
            ) from None
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(limit, hint)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def too_large(limit: int, hint: str = "") -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes, the most this route accepts. "
        f"{hint or 'Send less.'} docs/security.md lists each route's limit and its setting."
    )


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, in one message, and then passes
    on what the client sends (its disconnection)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


# --- the headers ------------------------------------------------------------------------------


def _app_settings(app: Any) -> Settings:
    """The settings of the Blastwall app that uvicorn runs behind its own middleware."""
    while not isinstance(getattr(getattr(app, "state", None), "settings", None), Settings):
        app = app.app
    settings: Settings = app.state.settings
    return settings


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline on each request's headers.

    h11 has no timeout of its own, and uvicorn's keep-alive timeout runs only between two
    requests and stops at the first byte: a client could hold a connection open forever by
    sending a request's headers a byte at a time, or nothing at all. Here a connection that
    waits for a request's headers (a new connection, or one kept alive after an answer) gets
    the app's `header_timeout` seconds to send them in full; then it is answered 408 (or just
    closed, if nothing came) and closed."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = _app_settings(self.app).header_timeout
        self.header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watching()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        """Start the headers' deadline when the connection waits for a request, stop it once
        the request's headers are in."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self.header_deadline is None:
            self.header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)
        elif not waiting:
            self._stop_watching()

    def _stop_watching(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_late(self) -> None:
        self.header_deadline = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        partial, _ = self.conn.trailing_data
        if partial:  # h11 cannot answer a request it has not parsed: written as it is
            text = b"The request's headers did not arrive in time.\n"
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: "
                + str(len(text)).encode()
                + b"\r\n\r\n"
                + text
            )
        self.transport.close()
