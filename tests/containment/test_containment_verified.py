"""Containment that can be trusted: one canonical tool identity from the inventory to the
guard, undeclared tools reported and denied while failing closed, containment verified by
telemetry (breached, verified, unverified), pins of known prompt and model versions only, a
roll-back to the version current before the incident, and CLI parameters typed by the
control's schema."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from blastwall.containment import verify
from blastwall.containment.commands import parse_params
from blastwall.containment.models import ContainmentAction
from blastwall.db import Database
from blastwall.inventory.schemas import Control
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction
from blastwall_guard import Guard
from tests.conftest import Clients

H = dict[str, str]


def _incident(client: TestClient, headers: H, system: str = "refund-agent") -> int:
    answer = client.post(
        "/api/v1/incidents",
        json={
            "title": "Refunds outside policy",
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "systems": [system],
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _act(client: TestClient, incident: int, headers: H, **body: Any) -> Any:
    body.setdefault("reason", "refunds outside policy")
    return client.post(f"/api/v1/incidents/{incident}/actions", json=body, headers=headers)


def _timeline(client: TestClient, incident: int, headers: H) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/incidents/{incident}/timeline?limit=500", headers=headers)
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _span(
    db: Database,
    *,
    at: datetime,
    tool: str | None = "issue_refund",
    error: str | None = None,
    operation: str = "execute_tool",
    n: int,
) -> None:
    with db.transaction() as session:
        session.add(
            Interaction(
                trace_id=f"{n:032x}",
                span_id=f"{n:016x}",
                system_id="refund-agent",
                name=f"execute_tool {tool}",
                schema="genai",
                operation=operation,
                conversation_id=f"c-{n}",
                tool_name=tool,
                tool_arguments={"amount": 50},
                error_type=error,
                content_policy="full",
                start_time=at,
                end_time=at,
                latency_ms=1.0,
            )
        )
        session.commit()


def _verify(db: Database, guards: verify.Guards | None = None, now: datetime | None = None) -> None:
    with db.transaction() as session:
        for action in verify.watched(session):
            verify.verify_action(
                session, action, now=now or datetime.now(UTC), settle=0.0, guards=guards
            )
            session.commit()


# -- one tool identity ---------------------------------------------------------------------


@pytest.mark.parametrize("named", ["issue-refund", "issue_refund", "Issue_Refund"])
def test_revoking_by_any_spelling_denies_every_spelling(
    clients: Clients, admin: H, inventory: list[str], named: str
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    answer = _act(client, incident, admin, control="revoke_tool", params={"tool": named})
    assert answer.status_code == 201, answer.text
    assert answer.json()["params"] == {"tool": "issue-refund"}  # the inventory's own name
    state = client.get("/api/v1/controls?system=refund-agent", headers=admin).json()
    assert "issue-refund" in state["tools"]
    guard = Guard("refund-agent", "http://unused", "t", start=False)
    guard._install(state)
    for spelling in ("issue-refund", "issue_refund", "ISSUE REFUND", "issue.refund"):
        assert guard.check_tool(spelling).outcome == "deny", spelling
    assert guard.check_tool("lookup_order").allowed


def test_an_undeclared_tool_is_refused_with_the_declared_names(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    answer = _act(client, incident, admin, control="revoke_tool", params={"tool": "wire_money"})
    assert answer.status_code == 422
    problem = answer.json()["errors"][0]
    assert problem["field"] == "body.params.tool"
    assert "issue-refund" in problem["message"]


def test_a_suspended_agent_is_matched_canonically(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    answer = _act(client, incident, admin, control="suspend", params={"agent": "Order_Lookup"})
    assert answer.status_code == 201, answer.text
    state = client.get("/api/v1/controls?system=refund-agent", headers=admin).json()
    guard = Guard("refund-agent", "http://unused", "t", agent="order_lookup", start=False)
    guard._install(state)
    assert guard.check_tool("lookup-order").outcome == "deny"


# -- undeclared tools and agents -----------------------------------------------------------


def _state(controls: int = 0) -> dict[str, Any]:
    control = {
        "action_id": 1,
        "control": "rate_limit",
        "params": {"per_minute": 1000},
        "incident_id": 1,
        "set_by": "alice",
        "requested_by": "alice",
        "approved_by": None,
        "set_at": "2026-12-01T10:00:00+00:00",
        "reason": "slow down",
        "expires_at": None,
    }
    return {
        "system_id": "refund-agent",
        "revision": 3,
        "fallback": None,
        "controls": [control] * controls,
        "tools": ["issue-refund", "lookup-order"],
        "agents": ["refund-agent"],
    }


@pytest.mark.parametrize(
    ("fail_mode", "controls", "outcome"),
    [("closed", 1, "deny"), ("closed", 0, "allow"), ("open", 1, "allow")],
)
def test_undeclared_tool_is_reported_once_and_denied_when_closed_under_control(
    fail_mode: str, controls: int, outcome: str
) -> None:
    posted: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append({"path": request.url.path, **json.loads(request.content)})
        return httpx.Response(200, json={"signal_id": 1, "new": True})

    guard = Guard(
        "refund-agent",
        "http://blastwall",
        "t",
        fail_mode,  # type: ignore[arg-type]
        transport=httpx.MockTransport(answer),
        start=False,
    )
    guard._install(_state(controls))
    assert guard.check_tool("wire_money", {}).outcome == outcome
    assert guard.check_tool("Wire-Money", {}).outcome == outcome
    assert guard.check_tool("issue_refund", {}).allowed
    for _ in range(100):
        if posted:
            break
        time.sleep(0.05)
    time.sleep(0.1)
    assert posted == [
        {
            "path": "/api/v1/controls/undeclared",
            "system": "refund-agent",
            "kind": "tool",
            "name": "wire_money",
            "agent": None,
        }
    ]


def test_undeclared_agent_is_refused_while_failing_closed_under_control() -> None:
    from blastwall_guard import Suspended

    guard = Guard("refund-agent", "http://blastwall", "t", agent="rogue", start=False)
    guard._reported.add(("agent", "rogue"))  # no report from this test
    guard._install(_state(1))
    with pytest.raises(Suspended, match="not declared"):
        guard.check_call()
    guard._install(_state(0))
    guard.check_call()


def test_the_server_turns_a_report_into_one_signal(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    viewer = clients.headers("viewer", "refund-guard")
    body = {"system": "refund-agent", "kind": "tool", "name": "wire_money", "agent": None}
    first = client.post("/api/v1/controls/undeclared", json=body, headers=viewer)
    assert first.status_code == 200, first.text
    assert first.json()["new"] is True
    again = client.post(
        "/api/v1/controls/undeclared", json={**body, "name": "Wire-Money"}, headers=viewer
    )
    assert again.json() == {"signal_id": first.json()["signal_id"], "new": False}
    signal = client.get(f"/api/v1/signals/{first.json()['signal_id']}", headers=admin).json()
    assert signal["kind"] == "undeclared_tool"
    assert signal["archetype"] == "unauthorised_use"
    assert "issue-refund" in signal["summary"]
    missing = client.post(
        "/api/v1/controls/undeclared", json={**body, "system": "nope"}, headers=viewer
    )
    assert missing.status_code == 404


# -- verification by telemetry -------------------------------------------------------------


def _applied(clients: Clients, admin: H, **body: Any) -> tuple[int, int]:
    client = clients.client
    incident = _incident(client, admin)
    answer = _act(client, incident, admin, **body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["verification"] == "pending"
    return incident, int(answer.json()["id"])


def _action(db: Database, action_id: int) -> ContainmentAction:
    with db.transaction() as session:
        row = session.get(ContainmentAction, action_id)
        assert row is not None
        session.expunge(row)
        return row


def test_a_revoked_tool_that_still_runs_is_a_breach_on_the_incident(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    client = clients.client
    incident, action_id = _applied(
        clients, admin, control="revoke_tool", params={"tool": "issue-refund"}, grace_seconds=5
    )
    applied = _action(db, action_id).applied_at
    assert applied is not None
    _span(db, at=applied - timedelta(seconds=5), n=1)  # before: not a breach
    _span(db, at=applied + timedelta(seconds=1), n=2, error="ToolDenied")  # denied: fine
    _span(db, at=applied + timedelta(seconds=1), tool="lookup_order", n=3)  # other tool
    _verify(db, now=applied + timedelta(seconds=2))
    assert _action(db, action_id).verification == "pending"  # within the grace period

    _span(db, at=applied + timedelta(seconds=2), n=4)  # the refund went out
    nobody = verify.Guards()
    _verify(db, guards=nobody, now=applied + timedelta(seconds=3))
    row = _action(db, action_id)
    assert row.verification == "breached"
    assert row.breach_signal_id is not None
    with db.transaction() as session:
        signal = session.get(Signal, row.breach_signal_id)
        assert signal is not None
        assert (signal.kind, signal.severity) == ("containment_breach", "critical")
        assert signal.attributes["incident_id"] == incident
        assert [s["span_id"] for s in signal.attributes["spans"]] == [f"{4:016x}"]
        causes = signal.attributes["likely_causes"]
    assert causes[0].startswith("name mismatch")
    assert any("not deployed" in c for c in causes)
    entries = _timeline(client, incident, admin)
    assert entries[-1]["kind"] == "containment_breach"
    listed = client.get(f"/api/v1/incidents/{incident}/actions", headers=admin).json()
    assert listed["items"][0]["verification"] == "breached"
    # A breach is raised once: later spans do not add signals.
    _span(db, at=applied + timedelta(seconds=4), n=5)
    _verify(db, guards=nobody, now=applied + timedelta(seconds=6))
    with db.transaction() as session:
        assert session.query(Signal).filter_by(kind="containment_breach").count() == 1


def test_traffic_without_a_breach_verifies_and_silence_does_not(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    client = clients.client
    incident, action_id = _applied(
        clients, admin, control="revoke_tool", params={"tool": "issue_refund"}, grace_seconds=1
    )
    applied = _action(db, action_id).applied_at
    assert applied is not None
    _verify(db, now=applied + timedelta(seconds=2))
    assert _action(db, action_id).verification == "unverified"
    assert _action(db, action_id).verification_note == "no traffic"
    _span(db, at=applied + timedelta(seconds=1), tool="lookup_order", n=7)
    _verify(db, now=applied + timedelta(seconds=3))
    assert _action(db, action_id).verification == "verified"
    kinds = [e["kind"] for e in _timeline(client, incident, admin)]
    assert kinds[-2:] == ["containment_unverified", "containment_verified"]


def test_a_suspended_system_that_answers_is_breached_with_the_guard_cause(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    _, action_id = _applied(clients, admin, control="suspend", grace_seconds=30)
    applied = _action(db, action_id).applied_at
    assert applied is not None
    _span(db, at=applied + timedelta(seconds=1), operation="chat", tool=None, n=8)
    gone = verify.GuardInfo(
        principal="refund-guard",
        version="2",
        fail_mode="open",
        agent=None,
        connected_at=applied - timedelta(hours=1),
        disconnected_at=applied - timedelta(minutes=5),
    )
    _verify(db, guards=verify.Guards(gone=[gone]), now=applied + timedelta(seconds=2))
    row = _action(db, action_id)
    assert row.verification == "breached"
    assert row.verification_note is not None
    assert "open fail mode and disconnected" in row.verification_note


# -- known prompt and model versions -------------------------------------------------------


def test_a_pin_of_a_version_the_system_never_had_is_refused(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    answer = _act(client, incident, admin, control="pin_prompt_version", params={"version": "13"})
    assert answer.status_code == 422
    assert "never had version '13'" in answer.json()["errors"][0]["message"]
    assert "7" in answer.json()["errors"][0]["message"]
    known = _act(client, incident, admin, control="pin_prompt_version", params={"version": "7"})
    assert known.status_code == 201, known.text
    params = known.json()["params"]
    assert params["prompt"] == "refund-policy"
    assert params["content_hash"].startswith("sha256:9a8b7c6d")


def test_roll_back_pins_the_version_current_before_the_first_signal(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    new_hash = "sha256:" + "1" * 64
    changed = client.post(
        "/api/v1/changes",
        json={
            "system_id": "refund-agent",
            "kind": "prompt_change",
            "summary": "refund policy v8",
            "version": "8",
            "content_hash": new_hash,
        },
        headers=admin,
    )
    assert changed.status_code == 201, changed.text
    bad = client.post(
        "/api/v1/changes",
        json={
            "system_id": "refund-agent",
            "kind": "prompt_change",
            "summary": "x",
            "version": "9",
            "component": "nope",
        },
        headers=admin,
    )
    assert bad.status_code == 422
    incident = _incident(client, admin)
    pinned = _act(client, incident, admin, control="pin_prompt_version", params={}, rollback=True)
    assert pinned.status_code == 201, pinned.text
    assert pinned.json()["params"]["version"] == "7"
    entry = next(
        e for e in _timeline(client, incident, admin) if e["kind"] == "containment_applied"
    )
    assert "rolled back from 8 to 7, in force before the change" in entry["text"]
    assert "sha256:9a8b7c6d" in entry["text"]
    state = client.get("/api/v1/controls?system=refund-agent", headers=admin).json()
    guard = Guard("refund-agent", "http://unused", "t", start=False)
    guard._install(state)
    plan = guard.check_call()
    assert (plan.prompt_id, plan.prompt_version) == ("refund-policy", "7")
    assert plan.prompt_hash is not None and plan.prompt_hash.startswith("sha256:9a8b7c6d")
    # The model never changed: there is nothing to roll back to.
    model = _act(client, incident, admin, control="pin_model_version", params={}, rollback=True)
    assert model.status_code == 422
    assert "nothing to roll back" in model.json()["errors"][0]["message"]


# -- CLI parameters ------------------------------------------------------------------------


def test_cli_parameters_are_typed_by_the_control() -> None:
    assert parse_params(["version=13"], Control.pin_prompt_version) == {"version": "13"}
    assert parse_params(["per_minute=5"], Control.rate_limit) == {"per_minute": "5"}
    assert parse_params(["patterns=a", "patterns=b"], Control.block_input) == {
        "patterns": ["a", "b"]
    }
    assert parse_params(['patterns=["x", "y"]'], Control.block_input) == {"patterns": ["x", "y"]}
    assert parse_params(["all=true"], Control.require_approval) == {"all": "true"}


def test_cli_contain_pins_a_numeric_version(cli: Any, tmp_path: Any) -> None:
    from blastwall.cli import app
    from tests.conftest import EXAMPLES
    from tests.support.cli import run

    run(cli, "init")
    run(cli, "inventory", "apply", str(EXAMPLES))
    run(
        cli,
        "incident",
        "open",
        "--title",
        "t",
        "--archetype",
        "prompt_injection",
        "--severity",
        "SEV2",
        "--system",
        "refund-agent",
    )
    refused = cli.invoke(
        app,
        [
            "contain",
            "1",
            "--control",
            "pin_prompt_version",
            "--param",
            "version=13",
            "--reason",
            "r",
        ],
    )
    assert refused.exit_code != 0
    said = refused.output + str(refused.exception)
    assert "Input should be a valid string" not in said
    assert "never had version '13'" in said
    applied = run(
        cli,
        "contain",
        "1",
        "--control",
        "pin_prompt_version",
        "--param",
        "version=7",
        "--reason",
        "r",
    )
    assert "Applied" in applied
    assert "rate_limit" not in applied
    listed = run(cli, "containment", "list", "1")
    assert "pending" in listed
