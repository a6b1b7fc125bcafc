"""A slow client holds up nobody: a body that stops arriving holds no write slot and is cut off
with 408; headers that never end are cut off too."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from blastwall.api import create_app
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database
from blastwall.gate import HeaderTimeoutProtocol
from blastwall.settings import Settings
from tests.conftest import EXAMPLES
from tests.support.containment_live import Installation
from tests.support.live import free_port, serve, wait_until
from tests.support.otlp_json import chat, document, span
from tests.support.wire import (
    WAIT,
    closed_by_server,
    connect,
    read_answer,
    start,
    untouched,
)

INCIDENT = {
    "title": "written while another writer stalls",
    "archetype": "prompt_injection",
    "severity": "SEV3",
    "systems": ["support-chatbot"],
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_a_stalled_body_holds_up_no_other_writer(tmp_path: Path) -> None:
    """`blastwall serve` on SQLite: a writer sends its headers, one byte of a 100,000-byte
    body, and waits. An admin's write and an exporter's batch on other connections complete
    while it is still open; a client without a token is answered 401 without its body."""
    with Installation(tmp_path) as site:
        site.env["BLASTWALL_BODY_TIMEOUT"] = str(WAIT * 2)  # the stalled body outlives the test
        site.cli("inventory", "apply", str(EXAMPLES))
        admin = site.token("alice", "admin")
        stalling = site.token("slow-writer", "responder")
        exporter = site.token("exporter", "responder")
        site.start()
        announced = {"Content-Type": "application/json", "Content-Length": "100000"}
        stalled = start(
            site.url, "POST", "/api/v1/incidents", {**bearer(stalling), **announced}, b"{"
        )
        anonymous = start(site.url, "POST", "/api/v1/incidents", announced, b"{")
        try:
            made = httpx.post(
                f"{site.url}/api/v1/incidents", json=INCIDENT, headers=bearer(admin), timeout=WAIT
            )
            assert made.status_code == 201, made.text
            batch = document("support-chatbot", [span(chat("hello", "hi"))])
            sent = httpx.post(
                f"{site.url}/v1/traces", json=batch, headers=bearer(exporter), timeout=WAIT
            )
            assert sent.status_code == 200, sent.text
            assert untouched(stalled), "the stalled writer was answered or cut off"
            refused = read_answer(anonymous)
            assert refused.status == 401
            assert refused.headers["connection"] == "close"
            assert closed_by_server(anonymous)
        finally:
            stalled.close()
            anonymous.close()
        listed = httpx.get(
            f"{site.url}/api/v1/incidents", headers=bearer(admin), timeout=WAIT
        ).json()
        assert [i["title"] for i in listed["items"]] == [INCIDENT["title"]]


@pytest.fixture
def admin_token(db: Database) -> str:
    with db.transaction() as session:
        _, secret = auth_service.create_token(
            session, name="alice", role=Role.admin, created_by="test"
        )
    return secret


def test_a_body_that_stops_is_answered_408(db: Database, admin_token: str) -> None:
    with serve(create_app(db, Settings(body_timeout=1))) as url:
        headers = {**bearer(admin_token), "Content-Type": "application/json"}
        stalled = start(
            url, "POST", "/api/v1/incidents", {**headers, "Content-Length": "100"}, b"{"
        )
        with stalled:
            answer = read_answer(stalled)
            assert answer.status == 408
            assert b"stopped arriving" in answer.body
            assert closed_by_server(stalled)


def test_a_body_that_trickles_is_answered_408(db: Database, admin_token: str) -> None:
    """A byte every half second never pauses for `body_timeout`, but stays under
    `body_min_rate`: it is cut off all the same."""
    with serve(create_app(db, Settings(body_timeout=1, body_min_rate=1000))) as url:
        headers = {**bearer(admin_token), "Content-Type": "application/json"}
        trickle = start(url, "POST", "/api/v1/incidents", {**headers, "Content-Length": "5000"})
        with trickle:
            deadline = time.monotonic() + WAIT
            while untouched(trickle) and time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    trickle.sendall(b" ")
                time.sleep(0.5)
            assert read_answer(trickle).status == 408


@contextlib.contextmanager
def serve_with_header_timeout(db: Database, seconds: float) -> Iterator[str]:
    """The app behind uvicorn with the protocol `blastwall serve` runs, in a thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(db, Settings(header_timeout=seconds)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http=HeaderTimeoutProtocol,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until("the test server to start", lambda: server.started)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT)


def test_headers_that_never_end_are_cut_off(db: Database) -> None:
    with serve_with_header_timeout(db, 1) as url:
        partial = connect(url)  # the blank line that ends the headers never comes
        partial.sendall(b"POST /api/v1/incidents HTTP/1.1\r\nHost: x\r\nX-Waiting: 1\r\n")
        idle = start(url, "GET", "/api/v1/health", {})
        with partial, idle:
            answer = read_answer(idle)  # a whole request is answered, and the connection kept
            assert answer.status == 200
            idle.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # the next one stalls
            for sock in (partial, idle):
                assert read_answer(sock).status == 408
                assert closed_by_server(sock)


def test_a_connection_that_sends_nothing_is_closed(db: Database) -> None:
    with serve_with_header_timeout(db, 1) as url, contextlib.closing(connect(url)) as quiet:
        assert closed_by_server(quiet)
