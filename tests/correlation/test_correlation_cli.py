"""Correlation on the OTLP ingest path and on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.console import open_database
from blastwall.settings import get_settings
from blastwall.signals import service as signals
from blastwall.signals.schemas import SignalCreate
from tests.conftest import EXAMPLES, Clients
from tests.support.cli import run
from tests.support.otlp_json import chat, document, span, tool

H = dict[str, str]


def test_findings_and_unregistered_services_reach_candidates_on_ingest(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    bad = span(
        tool("issue_refund", {"amount": 5000}, **{"gen_ai.agent.name": "refund-agent"}),
        name="execute_tool issue_refund",
    )
    shadow = span(chat("hello", "hi"))
    for service, spans in (("refund-agent", [bad, bad]), ("shadow-gpt", [shadow])):
        answer = client.post("/v1/traces", json=document(service, spans), headers=admin)
        assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = client.get(
        "/api/v1/signals", params={"detector": "tool_policy"}, headers=admin
    ).json()["items"]
    (finding,) = found
    assert finding["group_id"] is not None and finding["candidate_id"] is not None
    candidate = client.get(f"/api/v1/candidates/{finding['candidate_id']}", headers=admin).json()
    assert candidate["status"] == "opened" and candidate["systems"] == ["refund-agent"]
    (unregistered,) = client.get(
        "/api/v1/signals", params={"unregistered": "true"}, headers=admin
    ).json()["items"]
    assert unregistered["candidate_id"] not in (None, finding["candidate_id"])
    other = client.get(f"/api/v1/candidates/{unregistered['candidate_id']}", headers=admin)
    assert other.json()["archetype"] == "unauthorised_use"
    assert other.json()["systems"] == ["shadow-gpt"]


def test_candidates_on_the_command_line(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "inventory", "apply", str(EXAMPLES))
    db = open_database()
    sender = Principal(name="dlp", role=Role.responder)
    with db.transaction() as session:
        for kind in ("pii_in_output", "pii_in_output", "secret_in_output"):
            signals.create_signal(
                session,
                data=SignalCreate.model_validate(
                    {
                        "source": "dlp",
                        "system": "code-assistant",
                        "kind": kind,
                        "archetype": "data_exfiltration",
                        "severity": "warning",
                        "summary": "Token in a completion",
                    }
                ),
                actor=sender,
            )
    db.engine.dispose()
    listed = json.loads(run(cli, "candidates", "--json"))
    (c,) = listed
    assert c["signal_count"] == 3 and c["group_count"] == 2 and c["status"] == "pending"
    table = run(cli, "candidates", "--status", "pending")
    assert "data_exfiltration on code-assistant" in table
    shown = run(cli, "candidates", "show", str(c["id"]))
    assert "severity: SEV4 from" in shown and "secret_in_output" in shown
    assert "evidence: 0 report(s), 0 corroborated by a detector; 3 other signal(s)" in shown
    refused = cli.invoke(app, ["candidates", "merge", str(c["id"]), "--into", "99"])
    assert refused.exit_code != 0 and "No incident 99" in str(refused.exception)
    accepted = run(cli, "candidates", "accept", str(c["id"]), "--severity", "SEV3")
    assert f"Candidate {c['id']} accepted: incident 1" in accepted
    shown_incident = json.loads(run(cli, "incident", "show", "1", "--json"))
    incident = shown_incident["incident"]
    assert incident["severity"] == "SEV3" and incident["systems"] == ["code-assistant"]
    kinds = [e["kind"] for e in shown_incident["timeline"]]
    assert kinds == ["created", "candidate_accepted"]
    run(
        cli,
        "noise",
        "maintenance",
        "--system",
        "fraud-scoring",
        "--start",
        "2026-01-01T00:00",
        "--end",
        "2999-01-01T00:00",
        "--reason",
        "retraining",
    )
    run(
        cli,
        "noise",
        "snooze",
        "--source",
        "eval",
        "--until",
        "2999-01-01T00:00",
        "--reason",
        "evaluation job rehearsal",
    )
    rules = json.loads(run(cli, "noise", "list", "--json"))
    assert [r["kind"] for r in rules["rules"]] == ["snooze", "maintenance"]
    assert rules["inhibitions"][0]["name"] == "vendor-outage-explains-latency"
    assert json.loads(run(cli, "noise", "show", str(rules["rules"][0]["id"]), "--json")) == []
    run(cli, "noise", "end", str(rules["rules"][0]["id"]))
    again = cli.invoke(app, ["noise", "end", str(rules["rules"][0]["id"])])
    assert again.exit_code != 0 and "ended already" in str(again.exception)
    audit = json.loads(run(cli, "audit", "--json"))
    routes = [a["route"] for a in audit]
    for command in ("candidates accept", "noise maintenance", "noise snooze", "noise end"):
        assert command in routes
    assert '"open_incident_at": "SEV2"' in run(cli, "candidates", "policy")


def test_serve_refuses_an_invalid_policy(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(cli, "init")
    bad = tmp_path / "policy.yaml"
    bad.write_text("grouping:\n  window: soon\n")
    refused = cli.invoke(app, ["candidates", "policy", "--check", str(bad)])
    assert refused.exit_code != 0 and "'soon' is not a duration" in str(refused.exception)
    monkeypatch.setenv("BLASTWALL_CORRELATION_POLICY", str(bad))
    get_settings.cache_clear()
    result = cli.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code != 0 and "is invalid" in str(result.exception)
    assert "listening" not in result.output
