"""Signals through the API: generic signals, people's reports, the Alertmanager webhook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app as cli_app
from blastwall.db import Database
from blastwall.inventory import service as inventory_service
from blastwall.inventory.loader import load_path
from blastwall.settings import get_settings
from blastwall.signals import alertmanager
from blastwall.signals import service as signal_service
from blastwall.signals.schemas import SignalCreate, SignalSeverity
from tests.conftest import EXAMPLES, Clients

H = dict[str, str]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _signal(client: TestClient, headers: H, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "dlp",
        "system": "support-chatbot",
        "kind": "pii_in_output",
        "severity": "high",
        "summary": "Card number in a chatbot answer",
        "attributes": {"rule": "pan", "matches": 1},
    }
    body.update(fields)
    answer = client.post("/api/v1/signals", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _list(client: TestClient, headers: H, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/signals", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


# -- generic signals ---------------------------------------------------------------------


def test_signal_stored_and_read(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    responder = clients.headers("responder", "dlp-bot")
    made = _signal(
        client,
        responder,
        archetype="data_exfiltration",
        trace_id=TRACE.upper(),
        conversation_id="conv-1",
    )
    assert made["id"] >= 1
    assert made["system_id"] == "support-chatbot" and made["unregistered"] is False
    assert made["status"] == "firing" and made["created_by"] == "dlp-bot"
    assert made["trace_id"] == TRACE and made["archetype"] == "data_exfiltration"
    assert made["attributes"] == {"rule": "pan", "matches": 1}
    assert made["starts_at"] is not None and made["ends_at"] is None
    again = client.get(f"/api/v1/signals/{made['id']}", headers=responder)
    assert again.status_code == 200 and again.json() == made
    missing = client.get(f"/api/v1/signals/{made['id'] + 1000}", headers=responder)
    assert missing.status_code == 404 and "blastwall signals list" in missing.json()["detail"]


def test_list_filters(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    a = _signal(client, admin, conversation_id="conv-a", trace_id=TRACE)
    b = _signal(client, admin, source="guardrail", severity="critical", system="refund-agent")
    c = _signal(client, admin, source="eval", severity="info", system="fraud-scoring")
    d = _signal(client, admin, source="vendor-status", severity="warning", system="shadow-gpt")

    def ids(**params: Any) -> list[int]:
        return [s["id"] for s in _list(client, admin, **params)]

    assert ids() == [d["id"], c["id"], b["id"], a["id"]]
    assert ids(system="refund-agent") == [b["id"]]
    assert ids(system="shadow-gpt") == [d["id"]]
    assert ids(source="guardrail") == [b["id"]]
    assert ids(severity="critical") == [b["id"]]
    assert ids(severity="info", source="eval") == [c["id"]]
    assert ids(status="resolved") == []
    assert ids(status="firing") == [d["id"], c["id"], b["id"], a["id"]]
    assert ids(conversation_id="conv-a") == [a["id"]]
    assert ids(trace_id=TRACE.upper()) == [a["id"]]
    assert ids(unregistered="true") == [d["id"]]
    assert d["id"] not in ids(unregistered="false")
    assert ids(since=a["created_at"]) == [d["id"], c["id"], b["id"], a["id"]]
    assert ids(until=a["created_at"]) == []
    assert ids(since="2999-01-01T00:00:00Z") == []
    naive = client.get("/api/v1/signals", params={"since": "2024-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.since"
    bad = client.get("/api/v1/signals", params={"severity": "SEV1"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.severity"


def test_pagination(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    made = [_signal(client, admin, summary=f"finding {n}")["id"] for n in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/signals", params=params, headers=admin).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next"]
        pages += 1
        if not cursor:
            break
    assert seen == sorted(made, reverse=True) and pages == 3
    bad = client.get("/api/v1/signals", params={"cursor": "nonsense"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


def test_unknown_system_is_kept_as_unregistered(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    responder = clients.headers("responder")
    made = _signal(client, responder, system="Marketing ChatGPT account")
    assert made["system_id"] is None
    assert made["system_ref"] == "Marketing ChatGPT account"
    assert made["unregistered"] is True
    no_system = _signal(client, responder, system=None)
    assert no_system["system_id"] is None and no_system["unregistered"] is False


def test_validation_names_each_field(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    answer = client.post(
        "/api/v1/signals",
        json={
            "source": "",
            "kind": "x",
            "severity": "SEV1",
            "summary": "s",
            "archetype": "gremlins",
            "trace_id": "xyz",
            "colour": "red",
        },
        headers=admin,
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["title"] == "Invalid input"
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {
        "body.source",
        "body.severity",
        "body.archetype",
        "body.trace_id",
        "body.colour",
    }
    big = {"blob": "x" * (64 * 1024)}
    too_big = client.post(
        "/api/v1/signals",
        json={"source": "dlp", "kind": "k", "severity": "info", "summary": "s", "attributes": big},
        headers=admin,
    )
    assert too_big.status_code == 422
    error = too_big.json()["errors"][0]
    assert error["field"] == "body.attributes" and "65536" in error["message"]
    for bad in ({"attributes": [1, 2]}, {"trace_id": "0" * 32}, {"summary": "a\x00b"}):
        body = {"source": "dlp", "kind": "k", "severity": "info", "summary": "s", **bad}
        refused = client.post("/api/v1/signals", json=body, headers=admin)
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"] == f"body.{next(iter(bad))}"


def test_roles(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    viewer = clients.headers("viewer", "vic")
    body = {"source": "dlp", "kind": "k", "severity": "info", "summary": "s"}
    denied = client.post("/api/v1/signals", json=body, headers=viewer)
    assert denied.status_code == 403 and "responder" in denied.json()["detail"]
    legal = clients.headers("legal")
    assert client.post("/api/v1/signals", json=body, headers=legal).status_code == 403
    alert = _payload(_alert())
    assert client.post(AM, json=alert, headers=viewer).status_code == 403
    for role in ("responder", "commander", "admin"):
        assert (
            client.post("/api/v1/signals", json=body, headers=clients.headers(role)).status_code
            == 201
        )
    assert client.post("/api/v1/signals", json=body).status_code == 401
    report = client.post("/api/v1/reports", json={"what": "odd answer"}, headers=viewer)
    assert report.status_code == 201
    assert client.get("/api/v1/signals", headers=viewer).status_code == 200
    shown = client.get(f"/api/v1/signals/{report.json()['signal_id']}", headers=viewer)
    assert shown.json()["created_by"] == "vic"


# -- reports -----------------------------------------------------------------------------


def test_report_gets_a_reference(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    viewer = clients.headers("viewer", "sam")
    what = "The chatbot told a customer to " + "ignore the refund policy " * 20
    answer = client.post(
        "/api/v1/reports",
        json={"what": what, "where": "support chat widget", "contact": "sam@example.com"},
        headers=viewer,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["reference"] == f"RPT-{body['signal_id']:06d}"
    assert body["message"].startswith("Thank you") and body["reference"] in body["message"]
    signal = client.get(f"/api/v1/signals/{body['signal_id']}", headers=viewer).json()
    assert signal["source"] == "report" and signal["kind"] == "user_report"
    assert signal["severity"] == "warning" and signal["status"] == "firing"
    assert signal["created_by"] == "sam" and signal["reference"] == body["reference"]
    assert signal["system_id"] is None and signal["unregistered"] is False
    assert len(signal["summary"]) <= 200 and signal["summary"].endswith("…")
    assert signal["attributes"]["what"] == what.strip()
    assert signal["attributes"]["where"] == "support chat widget"
    assert signal["attributes"]["contact"] == "sam@example.com"
    second = client.post("/api/v1/reports", json={"what": "again"}, headers=viewer).json()
    assert second["reference"] != body["reference"]


def test_report_finds_the_system(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client

    def report(**fields: Any) -> dict[str, Any]:
        answer = client.post("/api/v1/reports", json={"what": "odd", **fields}, headers=admin)
        assert answer.status_code == 201, answer.text
        signal_id = answer.json()["signal_id"]
        return dict(client.get(f"/api/v1/signals/{signal_id}", headers=admin).json())

    assert report(system="refund-agent")["system_id"] == "refund-agent"
    ghost = report(system="ghost-bot")
    assert ghost["system_id"] is None and ghost["unregistered"] is True
    named = report(where="the Refund agent in the orders page")
    assert named["system_id"] == "refund-agent"
    assert named["attributes"]["system_from"] == "where"
    _signal(client, admin, system="fraud-scoring", conversation_id="conv-77")
    by_conversation = report(conversation_id="conv-77", where="somewhere")
    assert by_conversation["system_id"] == "fraud-scoring"
    assert by_conversation["conversation_id"] == "conv-77"
    nothing = report(conversation_id="conv-unknown", where="somewhere")
    assert nothing["system_id"] is None and nothing["system_ref"] is None
    refused = client.post("/api/v1/reports", json={"what": "  "}, headers=admin)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.what"
    extra = client.post("/api/v1/reports", json={"what": "x", "severity": "high"}, headers=admin)
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "body.severity"


# -- Alertmanager ------------------------------------------------------------------------

AM = "/api/v1/ingest/alertmanager"
ZERO = "0001-01-01T00:00:00Z"


def _alert(
    status: str = "firing",
    fingerprint: str = "3f2b6c1d9e8a7f10",
    starts: str = "2026-11-20T10:00:00.123456789Z",
    ends: str = ZERO,
    annotations: dict[str, str] | None = None,
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "RefundRateHigh",
            "severity": "critical",
            "blastwall_system": "refund-agent",
            **labels,
        },
        "annotations": {"summary": "Refunds per minute 5x above baseline"}
        if annotations is None
        else annotations,
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=rate",
        "fingerprint": fingerprint,
    }


def _payload(*alerts: dict[str, Any], **fields: Any) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="RefundRateHigh"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "blastwall",
        "groupLabels": {"alertname": "RefundRateHigh"},
        "commonLabels": {"alertname": "RefundRateHigh"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }
    body.update(fields)
    return body


def _ingest(client: TestClient, headers: H, *alerts: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(AM, json=_payload(*alerts), headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_alertmanager_firing_resolved_refire(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    sender = clients.headers("responder", "alertmanager")
    first = _ingest(client, sender, _alert())
    assert first == {"created": 1, "updated": 0, "unchanged": 0, "signals": first["signals"]}
    signal_id = first["signals"][0]
    signal = client.get(f"/api/v1/signals/{signal_id}", headers=sender).json()
    assert signal["source"] == "alertmanager" and signal["kind"] == "RefundRateHigh"
    assert signal["severity"] == "critical" and signal["status"] == "firing"
    assert signal["system_id"] == "refund-agent" and signal["system_ref"] == "refund-agent"
    assert signal["summary"] == "Refunds per minute 5x above baseline"
    assert signal["fingerprint"] == "3f2b6c1d9e8a7f10"
    assert signal["starts_at"] == "2026-11-20T10:00:00.123456Z" and signal["ends_at"] is None
    assert signal["attributes"]["labels"]["alertname"] == "RefundRateHigh"
    assert signal["attributes"]["annotations"]["summary"].startswith("Refunds")
    assert signal["attributes"]["generatorURL"].startswith("http://prometheus")
    assert signal["created_by"] == "alertmanager"

    # Alertmanager repeats firing alerts with every notification of their group
    assert _ingest(client, sender, _alert())["unchanged"] == 1
    changed = _ingest(client, sender, _alert(annotations={"summary": "now 9x"}))
    assert changed["updated"] == 1 and changed["signals"] == [signal_id]

    resolved = _ingest(client, sender, _alert(status="resolved", ends="2026-11-20T10:30:00.5Z"))
    assert resolved["updated"] == 1 and resolved["signals"] == [signal_id]
    signal = client.get(f"/api/v1/signals/{signal_id}", headers=sender).json()
    assert signal["status"] == "resolved" and signal["ends_at"] == "2026-11-20T10:30:00.500000Z"
    # a repeated resolution, or a late copy of the firing one, changes nothing
    assert _ingest(client, sender, _alert(status="resolved", ends="2026-11-20T10:30:00.5Z")) == {
        "created": 0,
        "updated": 0,
        "unchanged": 1,
        "signals": [signal_id],
    }
    assert _ingest(client, sender, _alert())["unchanged"] == 1

    refire = _ingest(client, sender, _alert(starts="2026-11-20T11:00:00Z"))
    assert refire["created"] == 1 and refire["signals"][0] > signal_id
    new_id = refire["signals"][0]
    listed = _list(client, sender, source="alertmanager")
    assert [(s["id"], s["status"]) for s in listed] == [(new_id, "firing"), (signal_id, "resolved")]
    assert [s["id"] for s in _list(client, sender, source="alertmanager", status="firing")] == [
        new_id
    ]
    again = _ingest(client, sender, _alert(status="resolved", starts="2026-11-20T11:00:00Z"))
    assert again["updated"] == 1 and again["signals"] == [new_id]


def test_alertmanager_missed_and_unseen(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    # a resolution whose firing Blastwall never saw is recorded, resolved
    unseen = _ingest(
        client,
        admin,
        _alert(status="resolved", fingerprint="aa", ends="2026-11-20T10:05:00Z"),
    )
    assert unseen["created"] == 1
    row = client.get(f"/api/v1/signals/{unseen['signals'][0]}", headers=admin).json()
    assert row["status"] == "resolved" and row["ends_at"] == "2026-11-20T10:05:00Z"
    # a new start while the old one still fires: its resolution was missed
    old = _ingest(client, admin, _alert(fingerprint="bb"))["signals"][0]
    new = _ingest(client, admin, _alert(fingerprint="bb", starts="2026-11-21T00:00:00Z"))
    assert new["created"] == 1 and new["updated"] == 1
    closed = client.get(f"/api/v1/signals/{old}", headers=admin).json()
    assert closed["status"] == "resolved" and closed["attributes"]["resolution_missed"] is True
    assert closed["ends_at"] == "2026-11-21T00:00:00Z"
    # several alerts in one notification, each its own signal
    many = _ingest(
        client,
        admin,
        _alert(fingerprint="c1"),
        _alert(fingerprint="c2", severity="warning"),
        _alert(status="resolved", fingerprint="bb", starts="2026-11-21T00:00:00Z"),
    )
    assert (many["created"], many["updated"]) == (2, 1)
    assert many["signals"][2] == new["signals"][0]


def _with_service_names(db: Database) -> None:
    specs = [i.spec for i in load_path(EXAMPLES)]
    for spec in specs:
        if spec.id == "refund-agent":
            spec.telemetry.service_names = ["refunds-svc"]
    with db.transaction() as session:
        inventory_service.apply_specs(session, specs=specs, actor="test")


@pytest.mark.parametrize(
    ("labels", "system_id", "system_ref"),
    [
        (
            {"blastwall_system": "fraud-scoring", "service": "refund-agent"},
            "fraud-scoring",
            "fraud-scoring",
        ),
        ({"blastwall_system": "ghost", "service": "refund-agent"}, None, "ghost"),
        ({"system": "code-assistant"}, "code-assistant", "code-assistant"),
        ({"system": "payments", "service": "Refund-Agent"}, "refund-agent", "Refund-Agent"),
        ({"service": "refunds-svc"}, "refund-agent", "refunds-svc"),
        ({"job": "support-chatbot"}, "support-chatbot", "support-chatbot"),
        ({"system": "shadow-llm", "job": "node-exporter"}, None, "shadow-llm"),
        ({"job": "node-exporter"}, None, None),
        ({}, None, None),
    ],
)
def test_alertmanager_labels_name_the_system(
    clients: Clients,
    admin: H,
    db: Database,
    labels: dict[str, str],
    system_id: str | None,
    system_ref: str | None,
) -> None:
    _with_service_names(db)
    alert = _alert(fingerprint="fp-labels")
    alert["labels"] = {"alertname": "X", **labels}
    result = _ingest(clients.client, admin, alert)
    signal = clients.client.get(f"/api/v1/signals/{result['signals'][0]}", headers=admin).json()
    assert (signal["system_id"], signal["system_ref"]) == (system_id, system_ref)
    assert signal["unregistered"] is (system_id is None and system_ref is not None)


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("CRITICAL", "critical"),
        ("error", "high"),
        ("high", "high"),
        ("major", "high"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("info", "info"),
        ("none", "info"),
        ("low", "info"),
        (None, "info"),
    ],
)
def test_severity_mapping(label: str | None, severity: str) -> None:
    assert alertmanager.map_severity(label) == SignalSeverity(severity)


def test_alert_mapping_fallbacks() -> None:
    bare = alertmanager.Alert.model_validate(
        {"status": "firing", "labels": {"alertname": "Up"}, "startsAt": ZERO}
    )
    payload = alertmanager.Payload.model_validate(
        {"version": "4", "status": "firing", "alerts": []}
    )
    mapped = alertmanager.to_signal(bare, payload)
    assert mapped.summary == "Up" and mapped.kind == "Up" and mapped.starts_at is None
    assert mapped.fingerprint.startswith("labels:") and mapped.archetype is None
    described = bare.model_copy(
        update={
            "annotations": {"description": "d"},
            "labels": {"blastwall_archetype": "vendor_failure"},
        }
    )
    mapped = alertmanager.to_signal(described, payload)
    assert mapped.summary == "d" and mapped.kind == "alert"
    assert mapped.archetype == "vendor_failure"
    huge = bare.model_copy(update={"annotations": {f"a{n}": "x" * 5000 for n in range(100)}})
    clipped = alertmanager.to_signal(huge, payload).attributes
    assert clipped["clipped"] is True and len(json.dumps(clipped)) <= 64 * 1024


def test_alertmanager_payload_validation(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    wrong = client.post(AM, json=_payload(_alert(), version="3"), headers=admin)
    assert wrong.status_code == 422
    error = wrong.json()["errors"][0]
    assert error["field"] == "body.version" and "version 4" in error["message"]
    # fields a later Alertmanager may add are tolerated
    extra = _payload(_alert(), newField={"x": 1})
    extra["alerts"][0]["silencedBy"] = []
    assert client.post(AM, json=extra, headers=admin).status_code == 200
    broken = _payload(_alert(status="pending"))
    answer = client.post(AM, json=broken, headers=admin)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.alerts[0].status"
    assert client.post(AM, json={"alerts": []}, headers=admin).status_code == 422


# -- command line ------------------------------------------------------------------------


def test_cli_list_and_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLASTWALL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("BLASTWALL_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        assert runner.invoke(cli_app, ["init"]).exit_code == 0
        db = Database.from_url(get_settings().resolved_database_url)
        sender = Principal(name="guard", role=Role.responder)
        with db.transaction() as session:
            for system, severity in (("refund-agent", "high"), ("[red]x", "info")):
                signal_service.create_signal(
                    session,
                    data=SignalCreate.model_validate(
                        {
                            "source": "guardrail",
                            "system": system,
                            "kind": "jailbreak",
                            "severity": severity,
                            "summary": "[/bold] tried",
                            "attributes": {"score": 0.97},
                        }
                    ),
                    actor=sender,
                )
        db.engine.dispose()

        def run(*args: str) -> str:
            result = runner.invoke(cli_app, list(args))
            assert result.exit_code == 0, (args, result.output, result.exception)
            return result.output

        listed = json.loads(run("signals", "list", "--json"))
        assert [s["system_ref"] for s in listed] == ["[red]x", "refund-agent"]
        assert [
            s["id"] for s in json.loads(run("signals", "list", "--severity", "high", "--json"))
        ] == [listed[1]["id"]]
        assert json.loads(run("signals", "list", "--status", "resolved", "--json")) == []
        table = run("signals", "list", "--limit", "5")
        assert "[red]x (unregistered)" in table and "jailbreak" in table
        shown = run("signals", "show", str(listed[1]["id"]))
        assert "[/bold] tried" in shown and "0.97" in shown and "refund-agent" in shown
        assert (
            json.loads(run("signals", "show", str(listed[1]["id"]), "--json"))["id"]
            == (listed[1]["id"])
        )
        missing = runner.invoke(cli_app, ["signals", "show", "999"])
        assert missing.exit_code != 0
    finally:
        get_settings.cache_clear()
