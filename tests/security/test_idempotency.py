"""Nothing stored twice: a signal or report sent again with its `Idempotency-Key` answers the
first request's signal and stores nothing; Alertmanager's resent notifications change
nothing. Every test runs on SQLite and, with BLASTWALL_TEST_POSTGRES_URL, on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from blastwall.db import Database, utcnow
from blastwall.signals.models import Signal, SignalRequest
from blastwall.signals.service import REPLAY_WINDOW
from tests.conftest import Clients

H = dict[str, str]
KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
SIGNAL: dict[str, Any] = {
    "source": "dlp",
    "system": "support-chatbot",
    "kind": "pii_in_output",
    "severity": "high",
    "summary": "Card number in a chatbot answer",
    "attributes": {"rule": "pan", "matches": 1},
}
AM = "/api/v1/ingest/alertmanager"


def count(db: Database) -> int:
    with db.session(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Signal)) or 0)


def send(client: TestClient, headers: H, key: str | bytes | None, body: dict[str, Any]) -> Any:
    extra: dict[str, str | bytes] = {"Idempotency-Key": key} if key is not None else {}
    # httpx sends a bytes value as it is (the stubs name str values only): some keys are bytes.
    return client.post("/api/v1/signals", json=body, headers={**headers, **extra})  # type: ignore[arg-type]


def test_a_signal_sent_again_with_its_key_answers_the_first_one(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    dlp = clients.headers("responder", "dlp-scanner")
    first = send(client, dlp, KEY, SIGNAL)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    for key in (KEY, f'"{KEY}"'):  # bare, or a structured-field string as the draft writes it
        again = send(client, dlp, key, {**SIGNAL, "attributes": {"matches": 1, "rule": "pan"}})
        assert again.status_code == 201, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
    assert count(db) == 1
    # without a key, a body sent twice is two signals: nothing says it is a retry
    assert send(client, dlp, None, SIGNAL).status_code == 201
    assert send(client, dlp, None, SIGNAL).status_code == 201
    assert count(db) == 3


def test_the_same_key_with_another_body_is_refused(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    dlp = clients.headers("responder", "dlp-scanner")
    assert send(client, dlp, KEY, SIGNAL).status_code == 201
    other = send(client, dlp, KEY, {**SIGNAL, "severity": "critical"})
    assert other.status_code == 422
    assert [e["field"] for e in other.json()["errors"]] == ["header.Idempotency-Key"]
    assert count(db) == 1


def test_keys_belong_to_their_principal_and_route(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    dlp = clients.headers("responder", "dlp-scanner")
    guardrail = clients.headers("responder", "guardrail")
    ids = {send(client, headers, KEY, SIGNAL).json()["id"] for headers in (dlp, guardrail)}
    assert len(ids) == 2
    # the same principal's second token shares its keys
    again = send(client, clients.headers("responder", "dlp-scanner"), KEY, SIGNAL)
    assert again.json()["id"] in ids and again.headers["idempotent-replayed"] == "true"
    report = {"what": "The assistant promised a full refund against policy"}
    made = client.post("/api/v1/reports", json=report, headers={**dlp, "Idempotency-Key": KEY})
    assert made.status_code == 201 and made.json()["signal_id"] not in ids
    resent = client.post("/api/v1/reports", json=report, headers={**dlp, "Idempotency-Key": KEY})
    assert resent.status_code == 201 and resent.json() == made.json()
    assert count(db) == 3


def test_a_viewer_reports_once_with_a_key_and_cannot_replay_signals(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    viewer = clients.headers("viewer", "maria")
    report = {"what": "A strange answer", "where": "support chat widget"}
    answers = [
        client.post("/api/v1/reports", json=report, headers={**viewer, "Idempotency-Key": "r1"})
        for _ in range(3)
    ]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["reference"] for a in answers}) == 1
    assert count(db) == 1
    assert send(client, viewer, "r1", SIGNAL).status_code == 403


def test_a_key_is_new_again_after_the_replay_window(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    dlp = clients.headers("responder", "dlp-scanner")
    first = send(client, dlp, KEY, SIGNAL).json()["id"]
    with db.transaction() as session:
        aged = utcnow() - REPLAY_WINDOW - timedelta(minutes=1)
        session.execute(update(SignalRequest).values(created_at=aged))
        session.commit()
    later = send(client, dlp, KEY, {**SIGNAL, "severity": "critical"})
    assert later.status_code == 201 and later.json()["id"] != first
    with db.session(read_only=True) as session:  # the expired record went
        assert session.scalar(select(func.count()).select_from(SignalRequest)) == 1


def test_malformed_keys_are_refused(db: Database, clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    dlp = clients.headers("responder", "dlp-scanner")
    for key in ("x" * 256, '""', "a\tb", "clé".encode()):
        answer = send(client, dlp, key, SIGNAL)
        assert answer.status_code == 422, key
        assert [e["field"] for e in answer.json()["errors"]] == ["header.Idempotency-Key"]
    assert count(db) == 0


# --- Alertmanager -------------------------------------------------------------------------


def alert(status: str, starts: str | None = "2026-11-20T10:00:00.123456789Z") -> dict[str, Any]:
    found: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": "RefundRateHigh", "blastwall_system": "refund-agent"},
        "annotations": {"summary": "Refunds per minute 5x above baseline"},
        "endsAt": "2026-11-20T10:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": "3f2b6c1d9e8a7f10",
    }
    if starts is not None:
        found["startsAt"] = starts
    return found


def notify(client: TestClient, headers: H, *alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body = {"version": "4", "status": status, "receiver": "blastwall", "alerts": list(alerts)}
    answer = client.post(AM, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_alertmanager_notifications_sent_again_change_nothing(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    sender = clients.headers("responder", "alertmanager")
    (signal,) = notify(client, sender, alert("firing"))["signals"]
    for _ in range(2):
        assert notify(client, sender, alert("firing"))["unchanged"] == 1
    assert notify(client, sender, alert("resolved"))["updated"] == 1
    for _ in range(2):
        resent = notify(client, sender, alert("resolved"), alert("firing"))
        assert resent == {"created": 0, "updated": 0, "unchanged": 2, "signals": [signal] * 2}
    assert count(db) == 1


def test_a_late_copy_about_an_earlier_firing_leaves_the_later_one_alone(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    sender = clients.headers("responder", "alertmanager")
    (first,) = notify(client, sender, alert("firing"))["signals"]
    notify(client, sender, alert("resolved"))
    (second,) = notify(client, sender, alert("firing", starts="2026-11-20T11:00:00Z"))["signals"]
    late = notify(client, sender, alert("resolved"), alert("firing"))
    assert late == {"created": 0, "updated": 0, "unchanged": 2, "signals": [first, first]}
    now = client.get(f"/api/v1/signals/{second}", headers=sender).json()
    assert now["status"] == "firing"
    assert count(db) == 2


def test_a_resolution_without_a_start_sent_again_is_stored_once(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    client = clients.client
    sender = clients.headers("responder", "alertmanager")
    (signal,) = notify(client, sender, alert("resolved", starts=None))["signals"]
    for _ in range(2):
        assert notify(client, sender, alert("resolved", starts=None))["signals"] == [signal]
    assert count(db) == 1
