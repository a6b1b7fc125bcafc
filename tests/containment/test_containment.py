"""Containment through the API: pre-authorised actions, approval by a second person, revert,
expiry, evidence snapshots, timeline and audit records, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall.api import create_app
from blastwall.containment import service
from blastwall.containment.stream import expire_due
from blastwall.db import Database, utcnow
from blastwall.errors import PolicyError
from blastwall.settings import Settings
from tests.conftest import Clients
from tests.support.evidence import evidence_dir

__all__ = ["evidence_dir"]  # a fixture

H = dict[str, str]


def _incident(client: TestClient, headers: H, severity: str = "SEV2", **extra: Any) -> int:
    body = {
        "title": "Refund agent issues refunds outside policy",
        "archetype": "agentic_misalignment",
        "severity": severity,
        "systems": ["refund-agent"],
        **extra,
    }
    response = client.post("/api/v1/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _act(client: TestClient, incident: int, headers: H, **body: Any) -> Any:
    body.setdefault("reason", "refunds above the limit")
    return client.post(f"/api/v1/incidents/{incident}/actions", json=body, headers=headers)


def _timeline(client: TestClient, incident: int, headers: H) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/incidents/{incident}/timeline?limit=500", headers=headers)
    return list(answer.json()["items"])


def _state(client: TestClient, headers: H, system: str = "refund-agent") -> dict[str, Any]:
    answer = client.get(f"/api/v1/controls?system={system}", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_preauthorised_action_applies_with_snapshot_first(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    responder = clients.headers("responder", "rita")
    incident = _incident(client, admin)
    answer = _act(
        client, incident, responder, control="revoke_tool", params={"tool": "issue-refund"}
    )
    assert answer.status_code == 201, answer.text
    action = answer.json()
    assert action["state"] == "active"
    assert action["requested_by"] == "rita"
    assert action["snapshot_id"] is not None
    assert "Applied revoke_tool(tool=issue-refund) on refund-agent" in action["message"]

    state = _state(client, clients.headers("viewer"))
    assert state["revision"] == 1
    assert state["fallback"].startswith("Refund requests queue")
    [control] = state["controls"]
    assert control["control"] == "revoke_tool"
    assert control["params"] == {"tool": "issue-refund"}
    assert (control["set_by"], control["incident_id"]) == ("rita", incident)
    assert control["reason"] == "refunds above the limit"

    kinds = [e["kind"] for e in _timeline(client, incident, admin)]
    # The control contains the incident: it leaves triage
    # (tests/incidents/test_lifecycle_events.py).
    assert kinds[-3:] == ["evidence_snapshot", "containment_applied", "status_changed"]
    snapshot = client.get(
        f"/api/v1/incidents/{incident}/snapshots/{action['snapshot_id']}", headers=admin
    ).json()
    assert snapshot["purpose"] == "apply"
    assert snapshot["content"]["control_state"]["controls"] == []  # the state *before*
    assert len(snapshot["sha256"]) == 64


def test_not_preauthorised_waits_for_a_second_commander(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    responder = clients.headers("responder", "rita")
    incident = _incident(client, admin, severity="SEV3")
    answer = _act(client, incident, responder, control="suspend")
    assert answer.status_code == 202, answer.text
    action = answer.json()
    assert action["state"] == "pending_approval"
    assert "does not pre-authorise 'suspend' for the role responder at SEV3" in action["message"]
    assert f"/actions/{action['id']}/approve" in action["message"]
    assert _state(client, admin)["controls"] == []

    url = f"/api/v1/incidents/{incident}/actions/{action['id']}"
    refused = client.post(f"{url}/approve", headers=clients.headers("responder", "ron"))
    assert refused.status_code == 403
    assert "commander, admin" in refused.json()["detail"]

    commander = clients.headers("commander", "carol")
    approved = client.post(
        f"{url}/approve", json={"note": "agreed on the bridge"}, headers=commander
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "active"
    assert approved.json()["approved_by"] == "carol"
    [control] = _state(client, admin)["controls"]
    assert control["set_by"] == "carol" and control["approved_by"] == "carol"
    assert control["requested_by"] != "carol"
    again = client.post(f"{url}/approve", headers=commander)
    assert again.status_code == 409

    kinds = [e["kind"] for e in _timeline(client, incident, admin)]
    assert kinds[-5:] == [
        "containment_requested",
        "evidence_snapshot",
        "containment_applied",
        "status_changed",  # contained by the control (tests/incidents/test_lifecycle_events.py)
        "note",
    ]


def test_requester_cannot_approve_own_request(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = _incident(client, admin, severity="SEV4")
    responder = clients.headers("responder", "rita")
    action = _act(client, incident, responder, control="manual_fallback").json()
    url = f"/api/v1/incidents/{incident}/actions/{action['id']}"
    # rita with a commander token is still the same person
    again = client.post(f"{url}/approve", headers=clients.headers("commander", "rita"))
    assert again.status_code == 409
    assert "a second person approves it" in again.json()["detail"]
    rejected = client.post(f"{url}/reject", json={"note": "not needed"}, headers=admin)
    assert rejected.json()["state"] == "rejected"
    assert _state(client, admin)["controls"] == []


def test_revert_restores_and_is_recorded(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    incident = _incident(client, admin)
    first = _act(client, incident, admin, control="revoke_tool", params={"tool": "issue-refund"})
    second = _act(client, incident, admin, control="rate_limit", params={"per_minute": 5})
    assert len(_state(client, admin)["controls"]) == 2
    url = f"/api/v1/incidents/{incident}/actions/{first.json()['id']}/revert"
    reverted = client.post(url, json={"reason": "fix deployed"}, headers=admin)
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["state"] == "reverted"
    assert reverted.json()["ended_by"] == "alice"
    state = _state(client, admin)
    assert [c["action_id"] for c in state["controls"]] == [second.json()["id"]]
    assert state["revision"] == 3
    assert client.post(url, json={"reason": "again"}, headers=admin).status_code == 409
    entries = _timeline(client, incident, admin)
    assert [e["kind"] for e in entries[-2:]] == ["evidence_snapshot", "containment_reverted"]
    assert entries[-1]["text"].endswith("fix deployed")

    listed = client.get(f"/api/v1/incidents/{incident}/actions?limit=1", headers=admin).json()
    assert len(listed["items"]) == 1 and listed["next"]
    rest = client.get(
        f"/api/v1/incidents/{incident}/actions?limit=1&cursor={listed['next']}", headers=admin
    ).json()
    assert rest["items"][0]["id"] == second.json()["id"]


def test_expiry_lapses_and_says_so(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    expires = datetime.now(UTC) + timedelta(hours=1)
    answer = _act(
        client,
        incident,
        admin,
        control="require_approval",
        params={"all": True},
        expires_at=expires.isoformat(),
    )
    assert answer.json()["expires_at"] is not None
    assert expire_due(db, now=utcnow(), snapshot_interactions=10)[0] == []
    lapsed, upcoming = expire_due(db, now=expires + timedelta(seconds=1), snapshot_interactions=10)
    assert [a.id for a in lapsed] == [answer.json()["id"]]
    assert upcoming is None
    assert _state(client, admin)["controls"] == []
    entries = _timeline(client, incident, admin)
    # Its last control gone, the incident is no longer contained (test_lifecycle_events.py).
    assert [e["kind"] for e in entries[-2:]] == ["containment_expired", "containment_ended"]
    assert entries[-2]["actor"] == "blastwall:expiry"
    assert "Lapsed at its expiry" in entries[-2]["text"]


def test_refusals_say_what_to_do(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    incident = _incident(client, admin)
    undeclared = _act(client, incident, admin, control="block_input", params={"patterns": ["x"]})
    assert undeclared.status_code == 409
    assert "Add it under `controls`" in undeclared.json()["detail"]
    unknown_tool = _act(
        client, incident, admin, control="revoke_tool", params={"tool": "wire-money"}
    )
    assert unknown_tool.status_code == 422
    assert unknown_tool.json()["errors"][0]["field"] == "body.params.tool"
    assert "issue-refund" in unknown_tool.json()["errors"][0]["message"]
    bad_params = _act(client, incident, admin, control="rate_limit", params={"per_minute": 0})
    assert bad_params.json()["errors"][0]["field"] == "body.params.per_minute"
    two_ways = _act(client, incident, admin, control="require_approval", params={})
    assert two_ways.status_code == 422
    past = _act(client, incident, admin, control="suspend", expires_at="2020-01-01T00:00:00Z")
    assert past.json()["errors"][0]["field"] == "body.expires_at"
    viewer = _act(client, incident, clients.headers("viewer"), control="suspend")
    assert viewer.status_code == 403
    assert client.post(f"/api/v1/incidents/{incident}/actions", json={}).status_code == 401
    assert client.get("/api/v1/controls?system=ghost", headers=admin).status_code == 404
    two = _incident(client, admin, systems=["refund-agent", "support-chatbot"])
    which = _act(client, two, admin, control="suspend")
    assert which.json()["errors"][0]["field"] == "body.system"


def test_actions_are_audited(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    incident = _incident(client, admin)
    action = _act(client, incident, admin, control="suspend", params={"agent": "order-lookup"})
    assert action.status_code == 201, action.text
    audit = client.get("/api/v1/audit?limit=5", headers=admin).json()["items"]
    assert audit[0]["object"] == f"incident:{incident}/action:{action.json()['id']}"
    assert audit[0]["route"] == "/api/v1/incidents/{incident_id}/actions"


def test_affected_over_the_api(
    clients: Clients, admin: H, inventory: list[str], db: Database, evidence_dir: Path
) -> None:
    from blastwall.telemetry.models import Interaction

    client = clients.client
    incident = _incident(client, admin)
    at = datetime.now(UTC) - timedelta(minutes=30)
    with db.transaction() as session:
        for n, (user, amount) in enumerate([("u-1", 900), ("u-2", 40)], start=1):
            session.add(
                Interaction(
                    trace_id=f"{n:032x}",
                    span_id=f"{n:016x}",
                    system_id="refund-agent",
                    name="tool",
                    schema="genai",
                    operation="execute_tool",
                    conversation_id=f"c-{n}",
                    user_id=user,
                    tool_name="issue-refund",
                    tool_arguments={"amount": amount},
                    content_policy="full",
                    start_time=at + timedelta(seconds=n),
                    end_time=at + timedelta(seconds=n),
                    latency_ms=1.0,
                )
            )
        session.commit()
    url = f"/api/v1/incidents/{incident}/affected"
    found = client.get(f"{url}?pattern=900", headers=admin).json()
    assert [u["user_id"] for u in found["users"]] == ["u-1"]
    assert found["side_effects"][0]["tool_arguments"] == {"amount": 900}
    csv_text = client.get(f"{url}?format=csv", headers=admin).text
    assert csv_text.splitlines()[0].startswith("interaction_id,system_id,at")
    assert len(csv_text.splitlines()) == 3
    assert client.get(url, headers=clients.headers("viewer")).status_code == 403
    assert client.get(f"{url}?since=2026-01-01T00:00:00", headers=admin).status_code == 422
    assert client.get(f"{url}?pattern=(", headers=admin).status_code == 422
    marked = client.post(
        f"{url}/quarantine", json={"reason": "held", "tool": "issue-refund"}, headers=admin
    ).json()
    assert marked["affected"] == 2 and len(marked["marked"]) == 2
    again = client.get(url, headers=admin).json()
    assert all(r["quarantined"] for r in again["interactions"])
    assert _timeline(client, incident, admin)[-1]["kind"] == "outputs_quarantined"

    # An incident opened by a signal that names conversation c-2: by default only c-2 counts.
    raised = client.post(
        "/api/v1/signals",
        json={
            "source": "guardrail",
            "system": "refund-agent",
            "kind": "refund_outside_policy",
            "archetype": "agentic_misalignment",
            "severity": "critical",
            "summary": "A refund above the limit",
            "conversation_id": "c-2",
        },
        headers=admin,
    ).json()
    opened = client.get(f"/api/v1/candidates/{raised['candidate_id']}", headers=admin).json()
    assert opened["incident_id"] is not None
    signalled = f"/api/v1/incidents/{opened['incident_id']}/affected"
    scoped = client.get(signalled, headers=admin).json()
    assert scoped["scope"] == "signals"
    assert [c["conversation_id"] for c in scoped["conversations"]] == ["c-2"]
    wide = client.get(f"{signalled}?all=true", headers=admin).json()
    assert wide["scope"] == "all" and len(wide["conversations"]) == 2

    # Interactions kept as an incident's evidence count as what it touched.
    first = found["interactions"][0]["interaction_id"]  # c-1's, the one that matched 900
    collected = client.post(
        f"/api/v1/incidents/{incident}/evidence/collect",
        json={"interactions": [first]},
        headers=admin,
    )
    assert collected.status_code == 200, collected.text
    kept = client.get(url, headers=admin).json()
    assert kept["scope"] == "signals"
    assert [c["conversation_id"] for c in kept["conversations"]] == ["c-1"]


def test_tool_call_approvals(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    guard = clients.headers("viewer", "refund-guard")
    incident = _incident(client, admin)
    ask = {"system": "refund-agent", "tool": "issue-refund", "arguments": {"amount": 20}}
    early = client.post("/api/v1/controls/approvals", json=ask, headers=guard)
    assert early.status_code == 409
    assert "guard's state is out of date" in early.json()["detail"]
    _act(client, incident, admin, control="require_approval", params={"tool": "issue-refund"})

    asked = client.post("/api/v1/controls/approvals", json=ask, headers=guard)
    assert asked.status_code == 201, asked.text
    approval = asked.json()
    assert approval["state"] == "pending" and approval["requested_by"] == "refund-guard"
    url = f"/api/v1/controls/approvals/{approval['id']}"
    seen = client.get(url, headers=guard).json()
    assert seen["state"] == "pending" and seen["arguments"] is None  # viewers see no content
    pending = client.get("/api/v1/controls/approvals?pending=true", headers=admin).json()
    assert [a["id"] for a in pending["items"]] == [approval["id"]]
    assert pending["items"][0]["arguments"] == {"amount": 20}

    refused = client.post(f"{url}/decide", json={"approve": True}, headers=guard)
    assert refused.status_code == 403
    commander = clients.headers("commander", "carol")
    decided = client.post(f"{url}/decide", json={"approve": True, "note": "ok"}, headers=commander)
    assert decided.json()["state"] == "approved" and decided.json()["decided_by"] == "carol"
    assert (
        client.post(f"{url}/decide", json={"approve": False}, headers=commander).status_code == 409
    )
    kinds = [e["kind"] for e in _timeline(client, incident, admin)]
    assert kinds[-2:] == ["tool_approval_requested", "tool_call_approved"]

    short = client.post(
        "/api/v1/controls/approvals", json={**ask, "timeout": 1}, headers=guard
    ).json()
    with clients.db.transaction() as session:
        from blastwall.containment.models import ToolApproval

        row = session.get(ToolApproval, short["id"])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
    late = client.post(
        f"/api/v1/controls/approvals/{short['id']}/decide", json={"approve": True}, headers=admin
    )
    assert late.status_code == 409 and "is expired" in late.json()["detail"]
    with clients.db.transaction() as session:
        assert service.next_expiry(session) is not None  # the loop wakes for approvals too
    expire_due(clients.db, now=utcnow(), snapshot_interactions=10)
    with clients.db.transaction() as session:
        row = session.get(ToolApproval, short["id"])
        assert row is not None and row.state == "expired"
    entries = _timeline(client, incident, admin)
    assert entries[-1]["kind"] == "tool_call_expired"
    assert entries[-1]["actor"] == "blastwall:expiry"


def test_held_outputs_are_reviewed(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    guard = clients.headers("viewer", "chat-guard")
    incident = _incident(client, admin, systems=["support-chatbot"])
    output = {"system": "support-chatbot", "text": "Your card 4111 1111 1111 1111 is refunded."}
    early = client.post("/api/v1/controls/held", json=output, headers=guard)
    assert early.status_code == 409 and "out of date" in early.json()["detail"]
    applied = _act(client, incident, admin, control="quarantine_output", reason="leaks cards")
    assert applied.status_code == 201, applied.text

    held = client.post("/api/v1/controls/held", json=output, headers=guard)
    assert held.status_code == 201, held.text
    number = held.json()["id"]
    assert held.json()["incident_id"] == incident
    viewer = client.get("/api/v1/controls/held", params={"state": "held"}, headers=guard).json()
    assert [h["id"] for h in viewer["items"]] == [number]
    assert "4111" not in viewer["items"][0]["text"]  # masked for roles without content
    full = client.get("/api/v1/controls/held", headers=admin).json()["items"][0]
    assert "4111 1111 1111 1111" in full["text"]

    responder = clients.headers("responder", "rob")
    refused = client.post(
        f"/api/v1/controls/held/{number}/decide", json={"release": True}, headers=responder
    )
    assert refused.status_code == 403
    commander = clients.headers("commander", "cora")
    discarded = client.post(
        f"/api/v1/controls/held/{number}/decide",
        json={"release": False, "note": "carries a card number"},
        headers=commander,
    )
    assert discarded.status_code == 200 and discarded.json()["state"] == "discarded"
    again = client.post(
        f"/api/v1/controls/held/{number}/decide", json={"release": True}, headers=commander
    )
    assert again.status_code == 409
    entries = _timeline(client, incident, admin)
    kinds = [e["kind"] for e in entries]
    assert "output_held" in kinds and "output_discarded" in kinds
    assert not any("4111" in e["text"] for e in entries)  # the timeline never holds the text


def test_the_server_refuses_to_start_on_a_bad_policy(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "containment.yaml"
    path.write_text("approvers: [nobody-such-role]\n")
    with pytest.raises(PolicyError, match="approvers"):
        create_app(db, Settings(containment_policy=path))
