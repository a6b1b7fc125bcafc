"""The lifecycle kept by events (issue 17): milestones stamped at the time of the event that
reached them (a control applied, a status change), taken back when they no longer hold;
checklist steps ticked by the actions that carry them out; every change of an incident on
its timeline with before, after and who; groups resolved with their incident."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.containment.stream import expire_due
from blastwall.correlation import flows as correlation
from blastwall.correlation import triage
from blastwall.correlation.models import Candidate, SignalGroup
from blastwall.correlation.policy import load_policy
from blastwall.correlation.schemas import Accept
from blastwall.db import Database
from blastwall.incidents import flows as incident_flows
from blastwall.incidents import service as incidents
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import StatusChange
from blastwall.signals.models import Signal
from tests.conftest import EXAMPLES, Clients
from tests.support.incidents import open_refund_incident

H = dict[str, str]
API = "/api/v1/incidents"
ADMIN = Principal(name="ops", role=Role.admin)


def _at(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def _act(client: TestClient, incident: int, headers: H, **body: Any) -> dict[str, Any]:
    body.setdefault("reason", "refunds above the limit")
    answer = client.post(f"{API}/{incident}/actions", json=body, headers=headers)
    assert answer.status_code in (201, 202), answer.text
    return dict(answer.json())


def _revert(client: TestClient, incident: int, action: int, headers: H) -> None:
    answer = client.post(
        f"{API}/{incident}/actions/{action}/revert", json={"reason": "fixed"}, headers=headers
    )
    assert answer.status_code == 200, answer.text


def _status(client: TestClient, incident: int, headers: H, status: str) -> dict[str, Any]:
    answer = client.post(f"{API}/{incident}/status", json={"status": status}, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _get(client: TestClient, incident: int, headers: H) -> dict[str, Any]:
    return dict(client.get(f"{API}/{incident}", headers=headers).json())


def _timeline(client: TestClient, incident: int, headers: H) -> list[dict[str, Any]]:
    answer = client.get(f"{API}/{incident}/timeline?limit=500", headers=headers)
    return list(answer.json()["items"])


# --- 1. containment sets the contained milestone -------------------------------------------


def test_time_to_contain_is_when_the_first_control_was_applied(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    """Acceptance: the time to contain computed from the milestones is the time the first
    control was applied — here approved by a second person, after the request — not when
    someone types the status."""
    client = clients.client
    detected = datetime.now(UTC) - timedelta(hours=2)
    incident = open_refund_incident(
        client, admin, severity="SEV3", detected_at=detected.isoformat()
    )["id"]
    _status(client, incident, admin, "investigating")
    responder = clients.headers("responder", "rita")
    asked = _act(client, incident, responder, control="suspend")  # needs approval at SEV3
    assert asked["state"] == "pending_approval"
    assert _get(client, incident, admin)["milestones"]["contained"] is None

    commander = clients.headers("commander", "carol")
    approved = client.post(f"{API}/{incident}/actions/{asked['id']}/approve", headers=commander)
    assert approved.status_code == 200, approved.text
    applied = _at(approved.json()["applied_at"])
    assert applied > _at(asked["requested_at"])
    later = _act(client, incident, admin, control="revoke_tool", params={"tool": "issue-refund"})

    shown = _get(client, incident, admin)
    assert shown["status"] == "contained"
    assert _at(shown["milestones"]["contained"]) == applied  # not moved by the second control
    assert _at(later["applied_at"]) > applied
    to_contain = shown["durations"]["to_contain"]
    assert to_contain == (applied - _at(shown["milestones"]["detected"])).total_seconds()
    assert to_contain >= 7200
    entry = next(e for e in _timeline(client, incident, admin) if e["kind"] == "status_changed")
    assert entry["data"]["after"] == "investigating"  # the person's move
    moved = [e for e in _timeline(client, incident, admin) if e["kind"] == "status_changed"][-1]
    assert moved["actor"] == "carol" and moved["data"]["action_id"] == asked["id"]
    assert "investigating → contained" in moved["text"]

    # Typing the status afterwards moves nothing back: the milestones keep their events' times.
    recovering = _status(client, incident, admin, "recovering")
    assert _at(recovering["milestones"]["contained"]) == applied
    mitigated = _at(recovering["milestones"]["mitigated"])
    resolved = _status(client, incident, admin, "resolved")
    assert _at(resolved["milestones"]["mitigated"]) == mitigated
    entries = _timeline(client, incident, admin)
    for status, milestone in (("recovering", "mitigated"), ("resolved", "resolved")):
        change = next(
            e for e in entries if e["kind"] == "status_changed" and e["data"]["after"] == status
        )
        assert _at(change["at"]) == _at(resolved["milestones"][milestone])
        assert milestone in change["data"]["milestones"]
    # The incident's own milestone intervals (data, not the test's clock), in order.
    times = resolved["durations"]
    assert times["to_contain"] <= times["to_mitigate"] <= times["to_resolve"]


def test_a_control_moves_triage_to_contained(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    action = _act(client, incident, admin, control="rate_limit", params={"per_minute": 5})
    shown = _get(client, incident, admin)
    assert shown["status"] == "contained"
    milestones = shown["milestones"]
    assert _at(milestones["acknowledged"]) == _at(milestones["contained"])
    assert _at(milestones["contained"]) == _at(action["applied_at"])


def test_lifting_every_control_means_no_longer_contained(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    first = _act(client, incident, admin, control="revoke_tool", params={"tool": "issue-refund"})
    expires = datetime.now(UTC) + timedelta(hours=1)
    second = _act(
        client,
        incident,
        admin,
        control="rate_limit",
        params={"per_minute": 5},
        expires_at=expires.isoformat(),
    )
    _revert(client, incident, first["id"], admin)
    still = _get(client, incident, admin)
    assert _at(still["milestones"]["contained"]) == _at(first["applied_at"])  # one in force
    assert "containment_ended" not in [e["kind"] for e in _timeline(client, incident, admin)]

    # the second lapses: none in force any more
    expire_due(db, now=expires + timedelta(seconds=1), snapshot_interactions=10)
    shown = _get(client, incident, admin)
    assert shown["milestones"]["contained"] is None
    assert shown["status"] == "contained"  # left to people
    ended = _timeline(client, incident, admin)[-1]
    assert ended["kind"] == "containment_ended" and ended["actor"] == "blastwall:expiry"
    assert "no longer contained" in ended["text"]
    assert ended["data"] == {
        "action_id": second["id"],
        "status": "contained",
        "milestones_cleared": ["contained"],
    }

    again = _act(client, incident, admin, control="revoke_tool", params={"tool": "issue-refund"})
    shown = _get(client, incident, admin)
    assert _at(shown["milestones"]["contained"]) == _at(again["applied_at"])
    assert _timeline(client, incident, admin)[-1]["kind"] == "milestone_reached"


def test_lifting_controls_after_mitigation_keeps_the_milestone(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    action = _act(client, incident, admin, control="revoke_tool", params={"tool": "issue-refund"})
    _status(client, incident, admin, "recovering")
    _revert(client, incident, action["id"], admin)
    shown = _get(client, incident, admin)
    assert _at(shown["milestones"]["contained"]) == _at(action["applied_at"])
    ended = _timeline(client, incident, admin)[-1]
    assert ended["kind"] == "containment_ended" and "mitigated" in ended["text"]


def test_moving_back_clears_what_no_longer_holds(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    for status in ("investigating", "contained", "recovering"):
        _status(client, incident, admin, status)
    relapse = _status(client, incident, admin, "investigating")
    assert relapse["milestones"]["mitigated"] is None
    assert relapse["milestones"]["contained"] is None
    assert relapse["milestones"]["acknowledged"] is not None
    entry = _timeline(client, incident, admin)[-1]
    assert entry["data"]["milestones_cleared"] == ["contained", "mitigated"]
    first = _status(client, incident, admin, "resolved")
    reopened = _status(client, incident, admin, "investigating")
    assert reopened["milestones"]["resolved"] is None
    second = _status(client, incident, admin, "resolved")
    assert _at(second["milestones"]["resolved"]) > _at(first["milestones"]["resolved"])


# --- 2. checklist steps ticked by actions ----------------------------------------------------


def test_an_action_ticks_the_checklist_step_of_its_control(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]  # SEV2 on the refund agent
    steps = client.post(f"{API}/{incident}/playbooks", json={}, headers=admin).json()
    revoke = next(s for s in steps if s["control"] == "revoke_tool")
    action = _act(client, incident, admin, control="revoke_tool", params={"tool": "issue-refund"})
    checklist = client.get(f"{API}/{incident}/checklist", headers=admin).json()["items"]
    ticked = next(s for s in checklist if s["id"] == revoke["id"])
    assert ticked["state"] == "done" and ticked["action_id"] == action["id"]
    assert _at(ticked["completed_at"]) == _at(action["applied_at"])
    assert [s["id"] for s in checklist if s["state"] == "done"] == [revoke["id"]]
    entry = _timeline(client, incident, admin)[-1]
    assert entry["kind"] == "playbook_step" and entry["data"]["action_id"] == action["id"]
    assert f"action {action['id']}" in entry["text"]

    # A second action of the same control finds no open step of it: nothing else is ticked.
    _act(client, incident, admin, control="revoke_tool", params={"tool": "send-email"})
    checklist = client.get(f"{API}/{incident}/checklist", headers=admin).json()["items"]
    assert [s["id"] for s in checklist if s["state"] == "done"] == [revoke["id"]]


def test_a_step_run_for_approval_is_ticked_when_approved(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin, severity="SEV3")["id"]
    attached = client.post(
        f"{API}/{incident}/playbooks", json={"playbook": "model_manipulation"}, headers=admin
    ).json()
    pin = next(s for s in attached if s["step_id"] == "pin-model")
    responder = clients.headers("responder", "rita")
    ran = client.post(
        f"{API}/{incident}/checklist/model_manipulation:{pin['position']}/run",
        json={"reason": "a poisoned fine-tune", "params": {"version": "2024-08-06"}},
        headers=responder,
    )
    assert ran.status_code == 202, ran.text
    body = ran.json()
    assert body["step"]["state"] == "open" and body["step"]["action_id"] == body["action"]["id"]
    twice = client.post(
        f"{API}/{incident}/checklist/pin-model/run", json={"reason": "x"}, headers=responder
    )
    assert twice.status_code == 409 and "waits for the approval" in twice.json()["detail"]

    url = f"{API}/{incident}/actions/{body['action']['id']}/approve"
    approved = client.post(url, headers=clients.headers("commander", "carol"))
    assert approved.status_code == 200, approved.text
    checklist = client.get(f"{API}/{incident}/checklist", headers=admin).json()["items"]
    step = next(s for s in checklist if s["id"] == pin["id"])
    assert (step["state"], step["action_id"], step["completed_by"]) == (
        "done",
        body["action"]["id"],
        "carol",
    )


def test_steps_are_named_by_number_per_checklist_or_by_name(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin, severity="SEV3")["id"]
    first = client.post(f"{API}/{incident}/playbooks", json={}, headers=admin).json()
    second = client.post(
        f"{API}/{incident}/playbooks", json={"playbook": "model_manipulation"}, headers=admin
    ).json()
    assert [s["position"] for s in first] == list(range(1, len(first) + 1))
    assert [s["position"] for s in second] == list(range(1, len(second) + 1))

    def complete(step: str, **body: Any) -> Any:
        return client.post(f"{API}/{incident}/checklist/{step}/complete", json=body, headers=admin)

    by_id = complete(str(first[0]["id"]))  # the row's id, as before
    assert by_id.status_code == 200 and by_id.json()["id"] == first[0]["id"]
    numbered = complete("model_manipulation:1")
    assert numbered.status_code == 200 and numbered.json()["id"] == second[0]["id"]
    audit = complete("AUDIT")  # a prefix of audit-actions, any case
    assert audit.json()["step_id"] == "audit-actions"
    titled = complete("find the poisoned")  # a prefix of a title
    assert titled.json()["step_id"] == "poisoned-data"
    ambiguous = complete("preserve")  # both playbooks have one
    assert ambiguous.status_code == 422
    assert "agentic_misalignment:" in ambiguous.json()["errors"][0]["message"]
    assert complete("no-such-step").status_code == 404


def test_playbook_done_takes_numbers_and_names(cli: CliRunner) -> None:
    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output + (str(result.exception) if code else "")

    run("init")
    run("inventory", "apply", str(EXAMPLES))
    number = json.loads(
        run(
            "incident",
            "open",
            "--title",
            "Refund agent loops",
            "--archetype",
            "agentic_misalignment",
            "--severity",
            "SEV3",
            "--system",
            "refund-agent",
            "--json",
        )
    )["id"]
    run("playbook", "attach", str(number))
    run("playbook", "attach", str(number), "--playbook", "model_manipulation")
    assert "Audit every action" in run("playbook", "done", str(number), "audit", "--note", "ok")
    two = run("playbook", "done", str(number), "2", code=1)
    assert "agentic_misalignment:2" in two and "model_manipulation:2" in two
    done = run("playbook", "done", str(number), "2", "--playbook", "model_manipulation", "--skip")
    assert "model_manipulation:2" in done and "skipped" in done
    run("playbook", "done", str(number), "model_manipulation:1")
    items = json.loads(run("playbook", "checklist", str(number), "--json"))
    states = {(i["playbook_id"], i["step_id"]): i["state"] for i in items}
    assert states[("agentic_misalignment", "audit-actions")] == "done"
    assert states[("model_manipulation", "pin-model")] == "skipped"
    assert states[("model_manipulation", "what-changed")] == "done"
    listed = run("playbook", "checklist", str(number))
    assert "audit-actions" in listed


# --- 3. every change on the timeline -------------------------------------------------------


def test_every_change_is_on_the_timeline_with_before_after_and_who(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    commander = clients.headers("commander", "carol")
    for person in ("bob", "dana"):  # participants are principals: they hold tokens
        clients.headers("responder", person)
    patched = client.patch(
        f"{API}/{incident}",
        json={
            "title": "Refund agent refunds without approval",
            "severity": "SEV1",
            "severity_reason": "refunds keep going out",
            "summary": "Loops on issue-refund",
            "visibility": "restricted",
            "systems": ["refund-agent", "support-chatbot"],
            "add_participants": ["bob", "carol"],  # carol keeps seeing it once restricted
        },
        headers=commander,
    )
    assert patched.status_code == 200, patched.text
    _status(client, incident, commander, "investigating")
    entries = [e for e in _timeline(client, incident, admin) if e["actor"] == "carol"]
    texts = [e["text"] for e in entries]
    assert (
        "title: Refund agent issues refunds nobody asked for → Refund agent refunds without "
        "approval" in texts
    )
    assert "severity: SEV2 → SEV1 (refunds keep going out)" in texts
    assert "summary: none → Loops on issue-refund" in texts
    assert "visibility: open → restricted" in texts
    assert "systems: refund-agent → refund-agent, support-chatbot" in texts
    assert "bob added as participant: alice → alice, bob" in texts
    assert "carol added as participant: alice, bob → alice, bob, carol" in texts
    assert "Status triage → investigating" in texts
    severity = next(e for e in entries if e["data"].get("field") == "severity")
    assert severity["data"] == {"field": "severity", "before": "SEV2", "after": "SEV1"}

    role = {"role": "technical_lead", "assignee": "dana"}
    assert client.post(f"{API}/{incident}/roles", json=role, headers=commander).status_code == 200
    last = _timeline(client, incident, admin)[-1]
    assert last["kind"] == "participant_added"
    assert last["data"]["after"] == ["alice", "bob", "carol", "dana"]
    assert (
        last["text"] == "dana added as participant (technical_lead): alice, bob, carol → "
        "alice, bob, carol, dana"
    )


def test_incident_update_on_the_command_line(cli: CliRunner) -> None:
    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, list(args))
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.output + (str(result.exception) if code else "")

    run("init")
    run("inventory", "apply", str(EXAMPLES))
    number = json.loads(
        run(
            "incident",
            "open",
            "--title",
            "Chatbot leaks",
            "--archetype",
            "data_exfiltration",
            "--severity",
            "SEV3",
            "--system",
            "support-chatbot",
            "--json",
        )
    )["id"]
    assert "severity_reason" in run("incident", "update", str(number), "--severity", "SEV1", code=1)
    run("token", "create", "--name", "bob", "--role", "responder")
    updated = json.loads(
        run(
            "incident",
            "update",
            str(number),
            "--severity",
            "SEV1",
            "--reason",
            "customer data left",
            "--title",
            "Chatbot leaks e-mail addresses",
            "--summary",
            "Two conversations so far",
            "--add-participant",
            "bob",
            "--json",
        )
    )
    assert (updated["severity"], updated["title"]) == ("SEV1", "Chatbot leaks e-mail addresses")
    assert updated["summary"] == "Two conversations so far"
    shown = json.loads(run("incident", "show", str(number), "--json"))
    kinds = {e["kind"] for e in shown["timeline"]}
    assert {"field_changed", "participant_added"} <= kinds
    texts = [e["text"] for e in shown["timeline"]]
    assert "severity: SEV3 → SEV1 (customer data left)" in texts
    assert all(e["actor"].startswith("cli:") for e in shown["timeline"])
    assert "to contain" in run("incident", "show", str(number))


# --- 4. correlation groups resolved with their incident -----------------------------------


def test_resolving_resolves_the_groups_and_reopening_reopens_them(
    session: Session, inventory: list[str]
) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    signal = Signal(
        source="guardrail",
        kind="jailbreak_attempt",
        system_id="code-assistant",
        archetype="prompt_injection",
        severity="warning",
        summary="Instruction override",
        attributes={},
        status="firing",
        created_by="test",
        created_at=at,
        updated_at=at,
    )
    session.add(signal)
    correlation.correlate(session, [signal], now=at, policy=load_policy())
    session.commit()
    candidate = session.get(Candidate, signal.candidate_id)
    assert candidate is not None
    if candidate.incident_id is None:
        triage.accept(session, candidate_id=candidate.id, data=Accept(), actor=ADMIN)
    assert candidate.incident_id is not None
    incident_id = candidate.incident_id
    groups = select(SignalGroup).where(SignalGroup.candidate_id == candidate.id)
    assert all(g.resolved_at is None for g in session.scalars(groups))

    def move(status: Status) -> None:
        incident_flows.change_status(
            session, incident_id=incident_id, change=StatusChange(status=status), actor=ADMIN
        )

    move(Status.resolved)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=ADMIN)
    resolved = [g.resolved_at for g in session.scalars(groups)]
    assert resolved and all(r == incident.resolved_at for r in resolved)
    move(Status.investigating)
    assert all(g.resolved_at is None for g in session.scalars(groups))
    move(Status.resolved)
    move(Status.closed)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=ADMIN)
    assert all(g.resolved_at == incident.resolved_at for g in session.scalars(groups))
