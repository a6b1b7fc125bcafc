"""Obligations end to end through the API: a personal-data leak on an EU high-risk system
raises GDPR and AI Act candidates with their clocks; legal confirms one and dismisses the
other; the draft lists its gaps; a submission keeps the filed PDF as evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall import pipeline
from blastwall.db import Database
from blastwall.errors import InvalidInput
from blastwall.obligations import flows, service
from blastwall.obligations.profile import OrganisationSpec, load_profile, parse_profile
from blastwall.obligations.rules import shipped_packs
from blastwall.pipeline import ReminderDue
from tests.conftest import Clients

EXAMPLE = Path(__file__).parents[2] / "examples" / "obligations" / "organisation.yaml"
AWARE = "2026-10-03T11:00:00+02:00"  # a Saturday: the AI Act's 15 days end on a Sunday


def _apply_profile(db: Database) -> OrganisationSpec:
    spec = load_profile(EXAMPLE)
    with db.transaction() as session:
        service.apply_profile(session, spec=spec, source=str(EXAMPLE), actor="test")
    return spec


def _open(client: TestClient, headers: dict[str, str]) -> int:
    answer = client.post(
        "/api/v1/incidents",
        json={
            "title": "Fraud scoring explanations leak customers' IBANs",
            "archetype": "data_exfiltration",
            "severity": "SEV2",
            "systems": ["fraud-scoring"],
            "detected_at": AWARE,
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _by_rule(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["rule_id"]: r for r in rows}


def test_a_personal_data_leak_on_a_high_risk_system(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    _apply_profile(db)
    client = clients.client
    responder, legal = clients.headers("responder"), clients.headers("legal")
    incident = _open(client, responder)
    url = f"/api/v1/incidents/{incident}/obligations"
    assert client.get(url, headers=responder).json() == []

    facts = {
        "facts": [
            {"name": "personal_data_breach", "value": True},
            {"name": "fundamental_rights_infringement", "value": True, "state": "suspected"},
            {"name": "affected_people", "value": 1200},
            {"name": "data_categories", "value": ["name", "IBAN"]},
        ],
        "note": "explanations quoted other customers' records",
    }
    answer = client.post(f"{url}/facts", json=facts, headers=responder)
    assert answer.status_code == 200, answer.text
    found = _by_rule(answer.json())
    assert set(found) == {"gdpr-33", "ai-act-73-2", "contract-acme-24h"}
    gdpr, ai_act = found["gdpr-33"], found["ai-act-73-2"]
    assert gdpr["status"] == ai_act["status"] == "candidate"
    # GDPR Art. 33(1): 72 hours from Saturday 11:00 CEST.
    assert gdpr["clocks"][0]["due"]["at"] == "2026-10-06T09:00:00Z"
    # AI Act Art. 73(2): 15 days end on Sunday 18 October; Art. 3(4) of 1182/71 beside.
    clock = ai_act["clocks"][0]
    assert clock["due"]["local"] == "2026-10-18T23:59:59+02:00"
    assert [a["local"] for a in clock["alternatives"]] == ["2026-10-19T23:59:59+02:00"]
    assert {"condition": "system eu_ai_act_high_risk", "by": "system fraud-scoring"} in ai_act[
        "why"
    ]
    assert any("suspected" in w["by"] for w in ai_act["why"])
    assert ai_act["rule_out"] and ai_act["verify"] and ai_act["link"].startswith("https://")

    decision = f"{url}/{gdpr['id']}/decision"
    body = {"decision": "confirmed", "reason": "1,200 customers' IBANs disclosed"}
    assert client.post(decision, json=body, headers=responder).status_code == 403
    confirmed = client.post(decision, json=body, headers=legal)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    dismissed = client.post(
        f"{url}/{ai_act['id']}/decision",
        json={"decision": "not_applicable", "reason": "no harm under Art. 3(49): a GDPR matter"},
        headers=legal,
    )
    assert dismissed.json()["status"] == "not_applicable"
    assert dismissed.json()["decided_by"] == "legal-user"

    draft = client.get(f"{url}/{gdpr['id']}/draft", headers=legal)
    assert draft.status_code == 200, draft.text
    text = draft.text
    gaps = text.split("## Gaps")[1].split("## Deadlines")[0]
    assert "Likely consequences of the breach: not yet determined" in gaps
    assert "Approximate number of data subjects" not in gaps
    assert "1200" in text and "name, IBAN" in text and "dpo@example.com" in text
    assert "fundamental_rights_infringement" in text.split("## Preliminary information")[1]
    pdf_draft = client.get(f"{url}/{gdpr['id']}/draft", params={"format": "pdf"}, headers=legal)
    assert pdf_draft.headers["content-type"] == "application/pdf"
    assert pdf_draft.content.startswith(b"%PDF-")

    pdf = b"%PDF-1.4\n% the notification as filed\n%%EOF\n"
    submitted = client.post(
        f"{url}/{gdpr['id']}/submissions",
        params={
            "kind": "initial",
            "submitted_at": "2026-10-05T16:00:00+02:00",
            "reference": "BlnBDI-2026-0815",
            "name": "art33-notification.pdf",
        },
        content=pdf,
        headers={**legal, "Content-Type": "application/pdf"},
    )
    assert submitted.status_code == 201, submitted.text
    sent = submitted.json()["submissions"][0]
    assert sent["reference"] == "BlnBDI-2026-0815"
    assert submitted.json()["clocks"][0]["overdue"] is False
    items = client.get(f"/api/v1/incidents/{incident}/evidence", headers=legal).json()["items"]
    item = next(i for i in items if i["id"] == sent["evidence_item_id"])
    assert item["media_type"] == "application/pdf"

    timeline = client.get(f"/api/v1/incidents/{incident}/timeline", headers=legal).json()
    kinds = [e["kind"] for e in timeline["items"]]
    assert kinds.count("obligation_raised") == 3
    assert kinds.count("obligation_decided") == 2
    assert "obligation_submitted" in kinds


def test_editing_an_anchor_moves_the_clocks_on_the_timeline(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    _apply_profile(db)
    client, responder = clients.client, clients.headers("responder")
    incident = _open(client, responder)
    url = f"/api/v1/incidents/{incident}/obligations"
    client.post(
        f"{url}/facts", json={"facts": [{"name": "personal_data_breach"}]}, headers=responder
    )
    answer = client.put(
        f"{url}/anchors/awareness",
        json={"at": "2026-10-05T09:00:00+02:00", "reason": "the DPO learnt of it on Monday"},
        headers=responder,
    )
    assert answer.status_code == 200, answer.text
    gdpr = _by_rule(client.get(url, headers=responder).json())["gdpr-33"]
    assert gdpr["clocks"][0]["due"]["at"] == "2026-10-08T07:00:00Z"
    entries = client.get(
        f"/api/v1/incidents/{incident}/timeline", params={"kind": "fact"}, headers=responder
    ).json()["items"]
    assert "(was 2026-10-03T09:00:00+00:00)" in entries[-1]["text"]


def test_reminders_fire_once_per_level(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    _apply_profile(db)
    client, responder = clients.client, clients.headers("responder")
    incident = _open(client, responder)
    client.post(
        f"/api/v1/incidents/{incident}/obligations/facts",
        json={"facts": [{"name": "personal_data_breach"}]},
        headers=responder,
    )
    heard: list[ReminderDue] = []
    pipeline.subscribe(ReminderDue, lambda session, event: heard.append(event))
    # GDPR: 72 h from Saturday 09:00 UTC; 80 % of it has run by Monday 18:36 UTC.
    late = datetime(2026, 10, 5, 18, 40, tzinfo=UTC)
    with db.transaction() as session:
        fired = flows.tick(session, late)
    with db.transaction() as session:
        assert flows.tick(session, late) == 0
    gdpr = [e for e in heard if e.due_at == datetime(2026, 10, 6, 9, tzinfo=UTC)]
    assert sorted(e.level for e in gdpr) == ["clock_50", "clock_75"]
    assert fired == len(heard)
    assert {e.audience for e in heard} == {"legal"} and heard[0].channels == ("legal-email",)
    assert heard[0].recipient == "responder-user"
    with db.transaction() as session:
        flows.tick(session, datetime(2026, 10, 7, tzinfo=UTC))
    assert [e.level for e in heard if e.due_at == gdpr[0].due_at][-2:] == ["clock_90", "overdue"]


def test_profile_problems_carry_file_line_and_field() -> None:
    text = "organisation: X\ntimezone: Mars/Olympus\nentities:\n  - name: X\n    roles: [pirate]\n"
    with pytest.raises(InvalidInput) as caught:
        parse_profile(text, "organisation.yaml")
    found = {(p.location, p.line) for p in caught.value.problems}
    assert ("organisation.yaml: timezone", 2) in found
    assert ("organisation.yaml: entities[0].roles[0]", 5) in found


def test_every_shipped_rule_cites_its_text() -> None:
    rules = [rule for pack in shipped_packs() for rule in pack.rules]
    assert {r.regime for r in rules} >= {"EU AI Act", "GDPR", "NIS2", "DORA", "SEC"}
    for rule in rules:
        assert rule.article and rule.link.startswith("https://"), rule.id
        assert rule.deadlines, rule.id


def test_altering_a_system_under_an_ai_act_obligation_needs_an_acknowledgement(
    db: Database, clients: Clients, admin: dict[str, str], inventory: list[str]
) -> None:
    """AI Act Art. 73(6): pinning another model version of the system is refused without
    an acknowledgement, and the acknowledgement is on the timeline."""
    _apply_profile(db)
    client = clients.client
    incident = _open(client, admin)
    client.post(
        f"/api/v1/incidents/{incident}/obligations/facts",
        json={"facts": [{"name": "fundamental_rights_infringement", "state": "suspected"}]},
        headers=admin,
    )
    action = {
        "control": "pin_model_version",
        "params": {"version": "2026.10.2"},
        "reason": "the new model leaks",
    }
    url = f"/api/v1/incidents/{incident}/actions"
    refused = client.post(url, json=action, headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "body.acknowledgement", refused.text
    acknowledged = {**action, "acknowledgement": "needed_to_stop_harm"}
    applied = client.post(url, json=acknowledged, headers=admin)
    assert applied.status_code == 201, applied.text
    timeline = client.get(f"/api/v1/incidents/{incident}/timeline", headers=admin).json()
    entry = next(e for e in timeline["items"] if e["kind"] == "ai_act_acknowledgement")
    assert "needed to stop harm" in entry["text"]
    # Suspending alters nothing that the evaluation needs: no acknowledgement asked.
    suspend = client.post(url, json={"control": "suspend", "reason": "stop"}, headers=admin)
    assert suspend.status_code == 201, suspend.text


def test_rules_are_those_in_force_at_awareness_and_the_profile_overrides(
    db: Database, clients: Clients, inventory: list[str]
) -> None:
    """Aware on 1 July 2026, before the AI Act's Art. 73 applies (2 August 2026): no AI Act
    candidate. A disabled rule is not raised; the organisation's own rule is."""
    spec = _apply_profile(db).model_copy(update={"disabled_rules": ["contract-acme-24h"]})
    with db.transaction() as session:
        service.apply_profile(session, spec=spec, source="test", actor="test")
    client, responder = clients.client, clients.headers("responder")
    incident = _open(client, responder)
    url = f"/api/v1/incidents/{incident}/obligations"
    client.put(
        f"{url}/anchors/awareness",
        json={"at": "2026-07-01T10:00:00+02:00", "reason": "an earlier report surfaced"},
        headers=responder,
    )
    facts = [
        {"name": "personal_data_breach"},
        {"name": "fundamental_rights_infringement"},
    ]
    rows = client.post(f"{url}/facts", json={"facts": facts}, headers=responder).json()
    assert set(_by_rule(rows)) == {"gdpr-33"}
