"""Access follows principals, not names typed by hand: a token acts for its principal, a
new token does not take an existing person's name by accident, participants must be
principals, and only a commander, legal or an admin widens a restricted incident's circle."""

from __future__ import annotations

from tests.conftest import Clients
from tests.support.restricted import restricted_incident


def test_a_token_does_not_take_an_existing_principal_by_accident(
    clients: Clients, admin: dict[str, str]
) -> None:
    client = clients.client
    first = client.post(
        "/api/v1/tokens", json={"name": "paula", "role": "responder"}, headers=admin
    )
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/tokens", json={"name": "paula", "role": "admin"}, headers=admin)
    assert again.status_code == 409
    assert "principal" in again.json()["detail"]
    added = client.post(
        "/api/v1/tokens", json={"name": "paula", "role": "responder", "add": True}, headers=admin
    )
    assert added.status_code == 201
    rotated = client.post(
        "/api/v1/tokens",
        json={"name": "paula", "role": "responder", "replace": True},
        headers=admin,
    )
    assert rotated.status_code == 201
    old = {"Authorization": f"Bearer {first.json()['token']}"}
    assert client.get("/api/v1/incidents", headers=old).status_code == 401


def test_participants_must_be_principals(
    clients: Clients, admin: dict[str, str], inventory: list[str]
) -> None:
    client = clients.client
    incident = restricted_incident(clients, admin, severity="SEV2")
    nobody = client.patch(
        f"/api/v1/incidents/{incident}", json={"add_participants": ["ghost"]}, headers=admin
    )
    assert nobody.status_code == 422
    assert nobody.json()["errors"][0]["field"] == "body.add_participants"
    opened = client.post(
        "/api/v1/incidents",
        json={
            "title": "t",
            "archetype": "prompt_injection",
            "severity": "SEV3",
            "systems": ["refund-agent"],
            "participants": ["ghost"],
        },
        headers=admin,
    )
    assert opened.status_code == 422
    clients.headers("viewer", "ghost")
    now = client.patch(
        f"/api/v1/incidents/{incident}", json={"add_participants": ["ghost"]}, headers=admin
    )
    assert now.status_code == 200, now.text


def test_only_a_commander_legal_or_admin_widens_a_restricted_circle(
    clients: Clients, admin: dict[str, str], inventory: list[str]
) -> None:
    client = clients.client
    incident = restricted_incident(clients, admin, severity="SEV2")
    responder = clients.headers("responder", "rob")
    clients.headers("viewer", "viewer-2")
    client.patch(
        f"/api/v1/incidents/{incident}", json={"add_participants": ["rob"]}, headers=admin
    ).raise_for_status()
    refused = client.patch(
        f"/api/v1/incidents/{incident}", json={"add_participants": ["viewer-2"]}, headers=responder
    )
    assert refused.status_code == 403
    assert "restricted" in refused.json()["detail"]
    viewer = clients.headers("viewer", "viewer-2")
    assert client.get(f"/api/v1/incidents/{incident}", headers=viewer).status_code == 404
    clients.headers("commander", "cmd")
    commander = clients.headers("commander", "cmd")
    client.patch(
        f"/api/v1/incidents/{incident}", json={"add_participants": ["cmd"]}, headers=admin
    ).raise_for_status()
    allowed = client.patch(
        f"/api/v1/incidents/{incident}", json={"add_participants": ["viewer-2"]}, headers=commander
    )
    assert allowed.status_code == 200, allowed.text
    assert client.get(f"/api/v1/incidents/{incident}", headers=viewer).status_code == 200
