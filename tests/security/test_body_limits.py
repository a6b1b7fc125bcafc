"""Every route has a body limit, enforced while the body streams in, chunked or not: a body
over it is answered 413 before the server has read it all, and a gzip body that expands past
the OTLP limit is 413 too."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from blastwall.api import create_app
from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database
from blastwall.gate import route_limits
from blastwall.settings import Settings
from tests.conftest import Clients
from tests.support.live import serve
from tests.support.wire import (
    closed_by_server,
    read_answer,
    send_chunked_until_answered,
    start,
)

KiB = 1024
MiB = 1024 * KiB
SMALL = Settings(
    max_body_bytes=64 * KiB,
    ingest_max_body_bytes=128 * KiB,
    import_max_body_bytes=128 * KiB,
    evidence_max_upload_bytes=256 * KiB,
)
SENT_AT_MOST = 64 * MiB
"""What a test offers to send: far more than any limit above, and than the sockets' buffers,
so that an answer before it is all sent shows that the server stopped reading."""
H = dict[str, str]


@pytest.fixture
def small(db: Database, inventory: list[str]) -> Iterator[tuple[str, H]]:
    """A real server with small limits, and an admin's headers."""
    with db.transaction() as session:
        _, secret = auth_service.create_token(
            session, name="alice", role=Role.admin, created_by="test"
        )
    with serve(create_app(db, SMALL)) as url:
        yield url, {"Authorization": f"Bearer {secret}"}


def test_every_limit_names_a_route(app_client: TestClient) -> None:
    paths = set(app_client.get("/openapi.json").json()["paths"])
    assert set(route_limits(Settings())) <= paths


@pytest.mark.parametrize(
    ("path", "media", "limit"),
    [
        ("/api/v1/incidents", "application/json", SMALL.max_body_bytes),
        ("/api/v1/incidents/1/timeline", "application/json", SMALL.max_body_bytes),
        ("/v1/traces", "application/x-protobuf", SMALL.ingest_max_body_bytes),
        ("/api/v1/systems/cyclonedx", "application/json", SMALL.import_max_body_bytes),
        (
            "/api/v1/incidents/1/evidence/files?name=x.bin",
            "application/octet-stream",
            SMALL.evidence_max_upload_bytes,
        ),
    ],
)
def test_chunked_bodies_over_the_limit_are_refused_while_streaming(
    small: tuple[str, H], path: str, media: str, limit: int
) -> None:
    url, admin = small
    headers = {**admin, "Content-Type": media, "Transfer-Encoding": "chunked"}
    with start(url, "POST", path, headers) as sock:
        sent = send_chunked_until_answered(sock, total=SENT_AT_MOST, chunk=b" " * (16 * KiB))
        answer = read_answer(sock)
        assert answer.status == 413, answer.body
        assert str(limit) in orjson.loads(answer.body)["detail"]
        assert answer.headers["connection"] == "close"
        assert sent < SENT_AT_MOST
        assert closed_by_server(sock)


def test_a_declared_length_over_the_limit_is_refused_unread(small: tuple[str, H]) -> None:
    url, admin = small
    headers = {**admin, "Content-Type": "application/json", "Content-Length": str(30 * MiB)}
    with start(url, "POST", "/api/v1/incidents", headers) as sock:
        answer = read_answer(sock)  # not a byte of the body was sent
        assert answer.status == 413
        assert closed_by_server(sock)


def test_a_chunked_body_within_the_limit_is_taken(small: tuple[str, H]) -> None:
    url, admin = small
    body = orjson.dumps(
        {
            "title": "padded",
            "archetype": "prompt_injection",
            "severity": "SEV3",
            "systems": ["support-chatbot"],
        }
    )
    body += b" " * (SMALL.max_body_bytes - len(body))  # exactly the limit
    headers = {**admin, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    with start(url, "POST", "/api/v1/incidents", headers) as sock:
        for at in range(0, len(body), 10 * KiB):
            part = body[at : at + 10 * KiB]
            sock.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        answer = read_answer(sock)
    assert answer.status == 201, answer.body


def test_a_gzip_body_that_expands_past_the_limit_is_413(clients: Clients, admin: H) -> None:
    bomb = gzip.compress(b"\x00" * (70 * MiB))  # some 70 KB that expand past 64 MiB
    answer = clients.client.post(
        "/v1/traces",
        content=bomb,
        headers={**admin, "content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert answer.status_code == 413
    assert "expands to more than" in answer.json()["detail"]
    broken = clients.client.post(
        "/v1/traces",
        content=b"not gzip",
        headers={**admin, "content-type": "application/x-protobuf", "content-encoding": "gzip"},
    )
    assert broken.status_code == 400
