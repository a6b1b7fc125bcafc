"""Restricted incidents stay secret in the control plane: guards get the control state, not
the incident (no incident id, people or reason of a restricted incident's control); people
see those only for incidents they can see; held outputs of a restricted incident are listed
only to those who may see it."""

from __future__ import annotations

from blastwall.containment import service
from blastwall.db import Database
from tests.conftest import Clients
from tests.support.restricted import restricted_incident

SECRET = "SECRET-R-CONTAIN reason"


def _restricted_suspension(clients: Clients, admin: dict[str, str]) -> int:
    client = clients.client
    incident = restricted_incident(clients, admin, "refund-agent")
    answer = client.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "revoke_tool", "params": {"tool": "issue_refund"}, "reason": SECRET},
        headers=admin,
    )
    assert answer.status_code == 201, answer.text
    return int(incident)


def test_controls_of_a_restricted_incident_name_no_incident_people_or_reason(
    clients: Clients, admin: dict[str, str], inventory: list[str], db: Database
) -> None:
    client = clients.client
    incident = _restricted_suspension(clients, admin)
    viewer = clients.headers("viewer", "refund-guard")
    seen = client.get("/api/v1/controls?system=refund-agent", headers=viewer)
    assert seen.status_code == 200
    assert SECRET not in seen.text
    assert "alice" not in seen.text
    control = seen.json()["controls"][0]
    assert control["redacted"] is True
    assert (control["incident_id"], control["set_by"], control["reason"]) == (None, None, None)
    assert control["params"] == {"tool": "issue-refund"}  # what guards need is there

    full = client.get("/api/v1/controls?system=refund-agent", headers=admin).json()
    assert full["controls"][0]["reason"] == SECRET
    assert full["controls"][0]["incident_id"] == incident

    with db.session(read_only=True) as session:  # what the guards' stream sends
        streamed = service.control_state(session, system_id="refund-agent")
    assert SECRET not in streamed.model_dump_json()
    assert streamed.controls[0].incident_id is None


def test_held_outputs_of_a_restricted_incident_are_not_listed_to_others(
    clients: Clients, admin: dict[str, str], inventory: list[str]
) -> None:
    client = clients.client
    incident = restricted_incident(clients, admin, "support-chatbot")
    client.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "quarantine_output", "reason": SECRET},
        headers=admin,
    ).raise_for_status()
    guard = clients.headers("viewer", "chatbot-guard")
    held = client.post(
        "/api/v1/controls/held",
        json={"system": "support-chatbot", "text": "held answer", "conversation_id": "c-1"},
        headers=guard,
    )
    assert held.status_code == 201, held.text
    assert SECRET not in held.text
    listed = client.get("/api/v1/controls/held", headers=guard).json()
    assert listed["items"] == []
    assert len(client.get("/api/v1/controls/held", headers=admin).json()["items"]) == 1
