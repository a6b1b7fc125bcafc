"""Tokens and roles: 401 without a valid token, 403 for a role that may not act."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from blastwall.auth import service
from blastwall.auth.models import ApiToken
from blastwall.auth.roles import Role
from blastwall.db import Database
from tests.conftest import Clients


def test_health_needs_no_token(app_client: TestClient) -> None:
    answer = app_client.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_every_other_route_needs_a_token(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    checked = 0
    for path, methods in spec["paths"].items():
        if path == "/api/v1/health" or path == "/status" or path.startswith("/status/"):
            continue  # public: the health check, the status page (tests/comms)
        concrete = path.replace("{incident_id}", "1").replace("{system_id}", "x")
        concrete = concrete.replace("{entry_id}", "1").replace("{task_id}", "1")
        concrete = concrete.replace("{token_id}", "1").replace("{signal_id}", "1")
        concrete = concrete.replace("{interaction_id}", "1").replace("{key_id}", "1")
        concrete = concrete.replace("{trace_id}", "0" * 31 + "1")
        for method in methods:
            answer = app_client.request(method.upper(), concrete)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            checked += 1
    assert checked >= 15


def test_bad_and_revoked_tokens_are_refused(db: Database, app_client: TestClient) -> None:
    with db.transaction() as session:
        row, secret = service.create_token(session, name="ci", role=Role.viewer, created_by="t")
    good = {"Authorization": f"Bearer {secret}"}
    assert app_client.get("/api/v1/incidents", headers=good).status_code == 200
    bad = {"Authorization": f"Bearer {secret}x"}
    answer = app_client.get("/api/v1/incidents", headers=bad)
    assert answer.status_code == 401
    assert "unknown or revoked" in answer.json()["detail"]
    with db.transaction() as session:
        service.revoke_token(session, token_id=row.id)
    assert app_client.get("/api/v1/incidents", headers=good).status_code == 401


def test_only_the_hash_is_stored(db: Database) -> None:
    with db.transaction() as session:
        row, secret = service.create_token(session, name="x", role=Role.admin, created_by="t")
        stored = session.scalars(select(ApiToken)).all()
    assert secret.startswith("bw_")
    for token in stored:
        assert secret not in (token.token_hash, token.prefix, token.name)
    assert row.token_hash == service.hash_token(secret)


def test_role_decides(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    viewer = clients.headers("viewer")
    responder = clients.headers("responder")
    body = {"title": "t", "archetype": "prompt_injection", "severity": "SEV3"}
    denied = client.post("/api/v1/incidents", json=body, headers=viewer)
    assert denied.status_code == 403
    assert "responder" in denied.json()["detail"]
    created = client.post("/api/v1/incidents", json=body, headers=responder)
    assert created.status_code == 201
    incident = created.json()["id"]
    # assigning roles and closing are a commander's call
    assign = {"role": "scribe", "assignee": "bob"}
    assert (
        client.post(
            f"/api/v1/incidents/{incident}/roles", json=assign, headers=responder
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/incidents/{incident}/status", json={"status": "declined"}, headers=responder
        ).status_code
        == 403
    )
    # inventory and tokens belong to admins
    assert client.get("/api/v1/tokens", headers=responder).status_code == 403
    assert client.post("/api/v1/systems", json={}, headers=responder).status_code == 403


def test_admin_issues_tokens_over_the_api(clients: Clients, admin: dict[str, str]) -> None:
    client = clients.client
    made = client.post(
        "/api/v1/tokens", json={"name": "pipeline", "role": "responder"}, headers=admin
    )
    assert made.status_code == 201
    secret = made.json()["token"]
    listed = client.get("/api/v1/tokens", headers=admin).json()["items"]
    assert "pipeline" in [t["name"] for t in listed]
    assert all("token" not in t for t in listed)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/incidents", headers=headers).status_code == 200
    client.post(f"/api/v1/tokens/{made.json()['id']}/revoke", headers=admin)
    assert client.get("/api/v1/incidents", headers=headers).status_code == 401
