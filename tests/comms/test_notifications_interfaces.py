"""The notifications as admins reach them: the channel and outbox routes, and the
`blastwall notify` and `blastwall notifications` commands."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from blastwall import pipeline
from blastwall.cli import app
from blastwall.comms.delivery import DeliveryConfig, deliver_due
from blastwall.db import Database, utcnow
from blastwall.pipeline import IncidentChanged
from tests.conftest import Clients
from tests.support.cli import run
from tests.support.notify import WEBHOOK_SECRET, Receiver, verify_standard_webhook


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(autouse=True)
def _fresh(receiver: Receiver) -> None:
    receiver.reset()


def test_channels_are_for_admins_and_keep_their_secrets(
    app_client: TestClient, clients: Clients, admin: dict[str, str], receiver: Receiver
) -> None:
    body = {
        "name": "responders",
        "kind": "webhook",
        "settings": {"url": receiver.url(), "secret": WEBHOOK_SECRET},
    }
    responder = clients.headers("responder")
    assert (
        app_client.post("/api/v1/notification-channels", json=body, headers=responder).status_code
        == 403
    )
    assert app_client.get("/api/v1/notification-channels", headers=responder).status_code == 403
    made = app_client.post("/api/v1/notification-channels", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["settings"] == {"url": receiver.url(), "secret": "***"}
    again = app_client.post("/api/v1/notification-channels", json=body, headers=admin)
    assert again.status_code == 409
    listed = app_client.get("/api/v1/notification-channels", headers=admin).json()
    assert WEBHOOK_SECRET not in str(listed) and listed[0]["name"] == "responders"
    bad = {**body, "name": "x", "settings": {"url": "nope"}}
    refused = app_client.post("/api/v1/notification-channels", json=bad, headers=admin)
    assert refused.status_code == 422
    assert any("secret" in e["message"] for e in refused.json()["errors"])
    unknown = app_client.post(
        "/api/v1/notification-channels", json={**body, "kind": "fax"}, headers=admin
    )
    assert unknown.status_code == 422

    tested = app_client.post("/api/v1/notification-channels/responders/test", headers=admin)
    assert tested.json() == {
        "ok": True,
        "status": "HTTP 200",
        "code": 200,
        "detail": tested.json()["detail"],
    }
    assert verify_standard_webhook(receiver.wait_for(1)[0])

    off = app_client.patch(
        "/api/v1/notification-channels/responders", json={"enabled": False}, headers=admin
    )
    assert off.json()["enabled"] is False
    gone = app_client.delete("/api/v1/notification-channels/responders", headers=admin)
    assert gone.status_code == 204
    missing = app_client.get("/api/v1/notification-channels/responders", headers=admin)
    assert missing.status_code == 404


def test_the_outbox_over_the_api(
    app_client: TestClient, db: Database, admin: dict[str, str], receiver: Receiver
) -> None:
    body = {
        "name": "responders",
        "kind": "webhook",
        "settings": {"url": receiver.url(), "secret": WEBHOOK_SECRET},
    }
    assert app_client.post("/api/v1/notification-channels", json=body, headers=admin).is_success
    for incident_id in (41, 42, 43):
        with db.transaction() as session:
            pipeline.publish(
                session,
                IncidentChanged(
                    incident_id=incident_id,
                    change="opened",
                    at=utcnow(),
                    actor="alice",
                    severity="SEV2",
                    restricted=False,
                ),
            )
    receiver.answer = lambda request: 500
    deliver_due(db, config=DeliveryConfig(max_attempts=1))

    page = app_client.get("/api/v1/notifications?limit=2", headers=admin).json()
    assert [m["incident_id"] for m in page["items"]] == [43, 42] and page["next"]
    rest = app_client.get(f"/api/v1/notifications?cursor={page['next']}", headers=admin).json()
    assert [m["incident_id"] for m in rest["items"]] == [41]
    dead = app_client.get("/api/v1/notifications?state=dead&incident=42", headers=admin).json()
    (message,) = dead["items"]
    assert message["attempts"] == 1 and message["last_error"].startswith("HTTP 500")

    shown = app_client.get(f"/api/v1/notifications/{message['id']}", headers=admin).json()
    assert [(t["ok"], t["code"]) for t in shown["tries"]] == [(False, 500)]
    receiver.answer = lambda request: 200
    resent = app_client.post(f"/api/v1/notifications/{message['id']}/resend", headers=admin)
    assert resent.json()["state"] == "pending"
    twice = app_client.post(f"/api/v1/notifications/{message['id']}/resend", headers=admin)
    assert twice.status_code == 409
    deliver_due(db)
    shown = app_client.get(f"/api/v1/notifications/{message['id']}", headers=admin).json()
    assert shown["state"] == "delivered" and len(shown["tries"]) == 2
    assert app_client.get("/api/v1/notifications/999999", headers=admin).status_code == 404


def test_the_commands(cli: CliRunner, receiver: Receiver) -> None:
    run(cli, "init")
    run(
        cli, "notify", "channel", "add", "responders", "webhook",
        "--set", f"url={receiver.url()}", "--secret", f"secret={WEBHOOK_SECRET}",
    )  # fmt: skip
    leaked = cli.invoke(
        app, ["notify", "channel", "add", "x", "webhook", "--set", f"secret={WEBHOOK_SECRET}"]
    )
    assert leaked.exit_code == 1 and "--secret" in str(leaked.exception)
    listed = run(cli, "notify", "channel", "list", "--json")
    assert WEBHOOK_SECRET not in listed and '"***"' in listed
    audit = run(cli, "audit", "--json")
    assert WEBHOOK_SECRET not in audit and "notify channel add" in audit

    tested = run(cli, "notify", "test", "responders")
    assert tested.startswith("delivered: HTTP 200")
    receiver.answer = lambda request: 502
    failed = run(cli, "notify", "test", "responders", code=1)
    assert failed.startswith("FAILED: HTTP 502")
    receiver.answer = lambda request: 200

    run(
        cli, "incident", "open", "--title", "Chatbot rude", "--archetype",
        "toxicity_abuse", "--severity", "SEV3", "--reason", "complaints",
    )  # fmt: skip
    assert "1 notification(s) tried" in run(cli, "notifications", "deliver")
    listed = run(cli, "notifications", "--json")
    assert '"state": "delivered"' in listed and '"event": "opened"' in listed
    assert "HTTP 200" in run(cli, "notifications", "show", "1")
    assert "due again" in run(cli, "notifications", "resend", "1")
    assert '"state": "pending"' in run(cli, "notifications", "--incident", "1", "--json")
    assert run(cli, "notifications", "--dead", "--json").strip() == "[]"
    assert "removed" in run(cli, "notify", "channel", "remove", "responders")
