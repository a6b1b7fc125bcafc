"""Authentication comes first: a request without a valid token is answered 401 from its
headers, before a byte of its body is read, on every route that needs a token; failed
authentications are counted and logged with rate limiting, not audited one row each."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from blastwall.api import create_app
from blastwall.audit.models import AuditEntry
from blastwall.auth.failures import OTHER_SOURCES, FailedAuthentications
from blastwall.db import Database
from blastwall.gate import needs_token
from blastwall.settings import Settings
from tests.conftest import Clients
from tests.support.live import serve
from tests.support.wire import (
    closed_by_server,
    read_answer,
    send_chunked_until_answered,
    start,
)

MiB = 1024 * 1024
H = dict[str, str]
MUTATING = ("post", "put", "patch", "delete")


def _concrete(path: str) -> str:
    """The route template with a value for each parameter ("{trace_id}": 32 hex digits)."""
    parts = []
    for part in path.split("/"):
        if part == "{trace_id}":
            part = "0" * 31 + "1"
        elif part.startswith("{"):
            part = "1"
        parts.append(part)
    return "/".join(parts)


def _call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """Call the app with a request that announces a 30 MiB body; the test fails if the app
    asks for a byte of it. Answers the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"name=x",
        "root_path": "",
        "headers": [(b"content-length", str(30 * MiB).encode()), *headers],
        "client": ("203.0.113.9", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError(f"{method} {path}: the body was read before authentication")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return statuses[0]


def test_every_route_refuses_a_request_without_a_token_before_its_body(db: Database) -> None:
    app = create_app(db, Settings())
    spec = app.openapi()
    checked = 0
    for path, operations in spec["paths"].items():
        for method in operations:
            if method not in MUTATING:
                continue
            concrete = _concrete(path)
            if not needs_token(concrete):  # public (the status page): bounded all the same
                assert _call(app, method.upper(), concrete, []) == 413, (method, path)
                continue
            assert _call(app, method.upper(), concrete, []) == 401, (method, path)
            bad = [(b"authorization", b"Bearer bw_not-a-token")]
            assert _call(app, method.upper(), concrete, bad) == 401, (method, path)
            checked += 1
    assert checked >= 40
    assert app.state.auth_failures.total == 2 * checked


def test_an_ingest_key_or_role_is_checked_before_the_body(db: Database, clients: Clients) -> None:
    app = create_app(db, Settings())
    bad_key = [(b"x-blastwall-ingest-key", b"bwk_not-a-key")]
    assert _call(app, "POST", "/v1/traces", bad_key) == 401
    viewer = clients.headers("viewer")["Authorization"].encode()
    assert _call(app, "POST", "/v1/traces", [(b"authorization", viewer)]) == 403
    keys_only = create_app(db, Settings(otlp_auth="key"))
    responder = clients.headers("responder")["Authorization"].encode()
    assert _call(keys_only, "POST", "/v1/traces", [(b"authorization", responder)]) == 401


@pytest.mark.parametrize(
    "path", ["/api/v1/incidents", "/v1/traces", "/api/v1/incidents/1/evidence/files?name=x"]
)
def test_a_large_body_without_a_token_is_refused_unread(db: Database, path: str) -> None:
    """Over a socket: with a 30 MiB Content-Length the 401 comes before the client has sent a
    byte of its body; with a chunked body, while the client still sends; the server closes
    the connection either way."""
    with serve(create_app(db, Settings())) as url:
        declared = {"Content-Type": "application/json", "Content-Length": str(30 * MiB)}
        with start(url, "POST", path, declared) as sock:
            answer = read_answer(sock)
            assert answer.status == 401
            assert answer.headers["connection"] == "close"
            assert closed_by_server(sock)
        chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        with start(url, "POST", path, chunked) as sock:
            sent = send_chunked_until_answered(sock, total=64 * MiB, chunk=b" " * 65536)
            assert read_answer(sock).status == 401
            assert sent < 64 * MiB
            assert closed_by_server(sock)


def test_failed_authentications_are_counted_not_audited(
    db: Database, clients: Clients, admin: H, caplog: pytest.LogCaptureFixture
) -> None:
    client = clients.client
    body = {"title": "t", "archetype": "prompt_injection", "severity": "SEV3"}
    with caplog.at_level(logging.WARNING, logger="blastwall.auth"):
        for n in range(60):
            headers = {} if n % 2 else {"Authorization": "Bearer bw_wrong"}
            assert client.post("/api/v1/incidents", json=body, headers=headers).status_code == 401
        assert client.get("/api/v1/incidents").status_code == 401  # reads are counted too
    failures: FailedAuthentications = client.app.state.auth_failures  # type: ignore[attr-defined]
    assert failures.total == 61
    logged = [r for r in caplog.records if r.name == "blastwall.auth"]
    assert len(logged) == 1 and "failed authentication from testclient" in logged[0].message
    assert client.post("/api/v1/incidents", json=body, headers=admin).status_code == 201
    with db.transaction() as session:
        actors = dict(
            session.execute(select(AuditEntry.actor, func.count()).group_by(AuditEntry.actor)).all()
        )
    assert actors == {"alice": 1}  # the authenticated write, and nothing anonymous


def test_the_failure_log_has_one_line_per_address_and_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = FailedAuthentications(window=60, max_sources=2, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="blastwall.auth"):
        for _ in range(500):
            failures.failed("198.51.100.1", "no credentials")
        failures.failed("198.51.100.2", "no credentials")
        failures.failed("198.51.100.3", "no credentials")  # past max_sources: counted together
        failures.failed("198.51.100.4", "no credentials")
        assert len(caplog.records) == 3
        now[0] = 61.0
        failures.flush()  # the window is over: one line per address with the count
        assert len(caplog.records) == 5
        assert "499 more failed authentication(s) from 198.51.100.1" in caplog.messages[3]
        assert f"1 more failed authentication(s) from {OTHER_SOURCES}" in caplog.messages[4]
        now[0] = 62.0
        failures.failed("198.51.100.1", "no credentials")  # still failing: counted, not logged
        assert len(caplog.records) == 5
        failures.flush(everything=True)  # at shutdown
    assert len(caplog.records) == 6
    assert "1 more failed authentication(s) from 198.51.100.1" in caplog.messages[5]
    assert failures.total == 504
