"""The NUL character: PostgreSQL can store it neither in text nor in jsonb; SQLite can. One rule
on both: telemetry (OTLP, Alertmanager) has it taken out, so that a batch is not lost for
one character; a REST body or query holding one is refused 422 and nothing is stored. Every
test runs on SQLite and, with BLASTWALL_TEST_POSTGRES_URL, on PostgreSQL, and expects the
same answers on both."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from sqlalchemy import func, select

from blastwall.db import Database
from blastwall.incidents.models import Incident
from blastwall.signals.models import Signal
from blastwall.telemetry.models import ContextSpan, Interaction
from tests.conftest import Clients
from tests.support.otlp_json import chat, document, span
from tests.support.sdk_spans import make_spans

H = dict[str, str]
NUL = "\x00"


def count(db: Database, model: Any) -> int:
    with db.session(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def interactions(client: TestClient, headers: H) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/interactions", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_otlp_protobuf_strings_lose_their_nul_characters(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    request = encode_spans(make_spans("support-chatbot"))
    resource = request.resource_spans[0].resource
    resource.attributes.add(key=f"deploy{NUL}ment", value={"string_value": f"prod{NUL}"})
    for span_ in request.resource_spans[0].scope_spans[0].spans:
        span_.name = f"{span_.name}{NUL}"
        span_.status.message = f"fine{NUL}"
        span_.attributes.add(key=f"note{NUL}", value={"string_value": f"a{NUL}b"})
        listed = span_.attributes.add(key="tags").value.array_value.values
        listed.add(string_value=f"x{NUL}y")
        event = span_.events.add(name=f"retry{NUL}", time_unix_nano=span_.start_time_unix_nano)
        event.attributes.add(key="why", value={"string_value": f"time{NUL}out"})
        for attribute in span_.attributes:
            if attribute.key == "gen_ai.input.messages":
                text = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
                attribute.value.string_value = text.replace("hi", f"h{NUL}i")
    answer = clients.client.post(
        "/v1/traces",
        content=request.SerializeToString(),
        headers={**admin, "content-type": "application/x-protobuf"},
    )
    assert answer.status_code == 200, answer.text
    stored = interactions(clients.client, admin)
    assert len(stored) == 2 and count(db, ContextSpan) == 1
    for row in stored:
        assert not row["name"].endswith(NUL) and NUL not in json.dumps(row)
        assert row["attributes"]["note"] == "ab" and row["attributes"]["tags"] == ["xy"]
    chat_ = next(row for row in stored if row["operation"] == "chat")
    assert chat_["input_messages"][0]["parts"][0]["content"] == "hi"


def test_otlp_json_strings_lose_their_nul_characters(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    found = span(chat(f"card{NUL} please", f"no{NUL}"), name=f"chat{NUL} gpt-4o")
    found["attributes"].append({"key": f"k{NUL}", "value": {"stringValue": f"v{NUL}"}})
    body = orjson.dumps(document(f"support{NUL}-chatbot", [found]))
    assert b"\\u0000" in body
    answer = clients.client.post(
        "/v1/traces", content=body, headers={**admin, "content-type": "application/json"}
    )
    assert answer.status_code == 200 and answer.json() == {}
    (row,) = interactions(clients.client, admin)
    assert row["name"] == "chat gpt-4o" and row["system_id"] == "support-chatbot"
    assert row["attributes"]["k"] == "v"
    assert row["input_messages"][0]["parts"][0]["content"] == "card please"


def test_alertmanager_texts_lose_their_nul_characters(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": f"Refund{NUL}RateHigh", "blastwall_system": "refund-agent"},
        "annotations": {"summary": f"Refunds{NUL} 5x above baseline"},
        "startsAt": "2026-11-20T10:00:00Z",
        "fingerprint": f"3f2b{NUL}6c1d",
    }
    body = {"version": "4", "status": "firing", "receiver": f"blast{NUL}wall", "alerts": [alert]}
    answer = clients.client.post("/api/v1/ingest/alertmanager", json=body, headers=admin)
    assert answer.status_code == 200, answer.text
    (signal_id,) = answer.json()["signals"]
    stored = clients.client.get(f"/api/v1/signals/{signal_id}", headers=admin).json()
    assert stored["kind"] == "RefundRateHigh" and stored["fingerprint"] == "3f2b6c1d"
    assert stored["summary"] == "Refunds 5x above baseline"
    assert NUL not in json.dumps(stored)


SIGNAL: dict[str, Any] = {
    "source": "dlp",
    "system": "support-chatbot",
    "kind": "pii_in_output",
    "severity": "high",
    "summary": "Card number in a chatbot answer",
}


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/api/v1/signals", {**SIGNAL, "summary": f"a{NUL}b"}, "body.summary"),
        ("/api/v1/signals", {**SIGNAL, "attributes": {"rule": f"p{NUL}"}}, "body.attributes"),
        ("/api/v1/signals", {**SIGNAL, "attributes": {f"r{NUL}": 1}}, "body.attributes"),
        ("/api/v1/signals", {**SIGNAL, "system": f"x{NUL}"}, "body.system"),
        ("/api/v1/reports", {"what": f"odd{NUL} answer"}, "body.what"),
        ("/api/v1/reports", {"what": "odd", "contact": f"m{NUL}"}, "body.contact"),
        ("/api/v1/telemetry/keys", {"system_id": f"refund-agent{NUL}"}, "body.system_id"),
    ],
)
def test_rest_bodies_with_a_nul_character_are_refused(
    route: str,
    body: dict[str, Any],
    field: str,
    db: Database,
    clients: Clients,
    admin: H,
    inventory: list[str],
) -> None:
    answer = clients.client.post(route, json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert count(db, Signal) == 0


def test_incident_texts_with_a_nul_character_are_refused(
    db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    opened = {"title": "Refund agent over its limits", "archetype": "agentic_misalignment"}
    opened["severity"] = "SEV2"
    for field, value in (
        ("title", f"Refund agent{NUL}"),
        ("summary", f"x{NUL}"),
        ("participants", [f"alice{NUL}"]),
    ):
        answer = client.post("/api/v1/incidents", json={**opened, field: value}, headers=admin)
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["errors"]] == [f"body.{field}"]
    assert count(db, Incident) == 0
    made = client.post("/api/v1/incidents", json=opened, headers=admin)
    assert made.status_code == 201, made.text
    entry = {"kind": "note", "text": f"seen{NUL}"}
    timeline = f"/api/v1/incidents/{made.json()['id']}/timeline"
    refused = client.post(timeline, json=entry, headers=admin)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.text"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/signals?system=a%00b",
        "/api/v1/signals?conversation_id=%00",
        "/api/v1/interactions?user=a%00b",
        "/api/v1/interactions?tool=%00",
    ],
)
def test_queries_with_a_nul_character_are_refused(
    path: str, db: Database, clients: Clients, admin: H, inventory: list[str]
) -> None:
    answer = clients.client.get(path, headers=admin)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].startswith("query.")
    assert count(db, Interaction) == 0
