"""`blastwall contain`, `blastwall containment ...` and `blastwall affected` on the command
line, on a fresh SQLite data dir."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.console import open_database
from blastwall.containment import approvals
from blastwall.containment.schemas import ToolApprovalIn
from blastwall.telemetry.models import Interaction
from tests.conftest import ROOT

INVENTORY = ROOT / "examples" / "refund_agent" / "inventory.yaml"


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.stdout


def _seed() -> None:
    """Four interactions of refund-bot an hour ago: two conversations of two users, two
    refunds among them, and one of another system's user outside the hunt."""
    now = datetime.now(UTC) - timedelta(hours=1)

    def row(n: int, conversation: str, user: str, tool: str | None, args: Any) -> Interaction:
        return Interaction(
            trace_id=f"{n:032x}",
            span_id=f"{n:016x}",
            system_id="refund-bot",
            name="span",
            schema="genai",
            operation="execute_tool" if tool else "chat",
            conversation_id=conversation,
            user_id=user,
            tool_name=tool,
            tool_arguments=args,
            tool_result={"ok": True} if tool else None,
            input_messages=None if tool else [{"role": "user", "content": "refund please"}],
            content_policy="full",
            start_time=now + timedelta(seconds=n),
            end_time=now + timedelta(seconds=n, milliseconds=5),
            latency_ms=5.0,
        )

    db = open_database()
    try:
        with db.transaction() as session:
            session.add_all(
                [
                    row(1, "c-1", "u-1", None, None),
                    row(2, "c-1", "u-1", "issue_refund", {"order": "A-100", "amount": 900}),
                    row(3, "c-2", "u-2", "lookup_order", {"order": "A-101"}),
                    row(4, "c-2", "u-2", "issue_refund", {"order": "A-101", "amount": 45}),
                ]
            )
            session.commit()
    finally:
        db.engine.dispose()


def test_contain_revert_and_state(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "inventory", "apply", str(INVENTORY))
    run(
        cli,
        "incident",
        "open",
        "--title",
        "Refunds outside policy",
        "--archetype",
        "agentic_misalignment",
        "--severity",
        "SEV2",
        "--system",
        "refund-bot",
    )
    applied = json.loads(
        run(
            cli,
            "contain",
            "1",
            "--control",
            "revoke_tool",
            "--param",
            "tool=issue_refund",
            "--reason",
            "outside policy",
            "--json",
        )
    )
    # Stored under the inventory's name: the example declares `issue-refund`.
    assert applied["state"] == "active" and applied["params"] == {"tool": "issue-refund"}
    limited = run(
        cli,
        "contain",
        "1",
        "--control",
        "rate_limit",
        "--param",
        "per_minute=5",
        "--reason",
        "slow down",
        "--expires-at",
        "2099-01-01T00:00:00",
    )
    assert "action 2 (active): Applied rate_limit(per_minute=5) on refund-bot" in limited
    state = json.loads(run(cli, "containment", "state", "refund-bot", "--json"))
    assert [c["control"] for c in state["controls"]] == ["revoke_tool", "rate_limit"]
    assert state["controls"][1]["expires_at"].startswith("2099-01-01T00:00:00")
    assert "reverted" in run(cli, "containment", "revert", "1", "1", "--reason", "fixed")
    listed = json.loads(run(cli, "containment", "list", "1", "--json"))
    assert [a["state"] for a in listed] == ["reverted", "active"]
    wrong = cli.invoke(
        app, ["contain", "1", "--control", "revoke_tool", "--param", "tool", "--reason", "x"]
    )
    assert wrong.exit_code == 1 and "KEY=VALUE" in str(wrong.exception)
    run(
        cli,
        "contain",
        "1",
        "--control",
        "require_approval",
        "--param",
        "all=true",
        "--reason",
        "every tool by hand",
    )
    db = open_database()
    try:
        with db.transaction() as session:
            approvals.request_tool_approval(
                session,
                data=ToolApprovalIn(system="refund-bot", tool="send_email", arguments={"to": "x"}),
                principal=Principal(name="guard", role=Role.viewer),
            )
    finally:
        db.engine.dispose()
    [waiting] = json.loads(run(cli, "containment", "approvals", "--pending", "--json"))
    assert (waiting["tool"], waiting["state"]) == ("send_email", "pending")
    assert "denied" in run(cli, "containment", "decide", str(waiting["id"]), "--deny")
    audit = run(cli, "audit", "--json")
    assert "containment revert" in audit and '"contain"' in audit


def test_affected_lists_and_quarantines(cli: CliRunner) -> None:
    run(cli, "init")
    run(cli, "inventory", "apply", str(INVENTORY))
    run(
        cli,
        "incident",
        "open",
        "--title",
        "Refunds outside policy",
        "--archetype",
        "agentic_misalignment",
        "--severity",
        "SEV2",
        "--system",
        "refund-bot",
    )
    _seed()
    found = json.loads(run(cli, "affected", "1"))
    assert found["systems"] == ["refund-bot"]
    assert [c["conversation_id"] for c in found["conversations"]] == ["c-1", "c-2"]
    # c-2 looked an order up (read-only: a call, not a side effect) and had a refund.
    assert found["conversations"][1]["calls"] == 2
    assert found["conversations"][1]["side_effects"] == 1
    assert sorted(u["user_id"] for u in found["users"]) == ["u-1", "u-2"]
    assert len(found["calls"]) == 3 and len(found["side_effects"]) == 2
    assert len(found["interactions"]) == 4

    assert found["scope"] == "all"  # the incident has no signals naming conversations

    big = json.loads(run(cli, "affected", "1", "--tool", "issue_refund", "--pattern", "900"))
    assert [r["tool_arguments"] for r in big["interactions"]] == [{"order": "A-100", "amount": 900}]
    # A pattern selects whole conversations: the refund after the matching message is in.
    asked = json.loads(run(cli, "affected", "1", "--pattern", "refund please"))
    assert asked["scope"] == "pattern"
    assert [c["conversation_id"] for c in asked["conversations"]] == ["c-1"]
    assert [r["tool_arguments"] for r in asked["side_effects"]] == [
        {"order": "A-100", "amount": 900}
    ]

    result = cli.invoke(
        app,
        [
            "affected",
            "1",
            "--tool",
            "issue_refund",
            "--format",
            "csv",
            "--quarantine",
            "refunds outside policy held for review",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 output(s) newly marked quarantined" in result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["tool"] for r in rows] == ["issue_refund", "issue_refund"]
    assert {r["quarantined"] for r in rows} == {"True"}
    assert json.loads(rows[0]["tool_arguments"]) == {"order": "A-101", "amount": 45}
    again = json.loads(run(cli, "affected", "1"))
    assert sum(r["quarantined"] for r in again["interactions"]) == 2
    timeline = run(cli, "incident", "show", "1", "--json")
    assert "Outputs of 2 interaction(s) marked quarantined" in timeline


def test_params_of_a_list_take_plain_and_repeated_values() -> None:
    from blastwall.containment.commands import parse_params
    from blastwall.inventory.schemas import Control

    block = Control.block_input
    assert parse_params(["patterns=evil"], block) == {"patterns": ["evil"]}
    assert parse_params(["patterns=a", "patterns=(?i)b"], block) == {"patterns": ["a", "(?i)b"]}
    assert parse_params(['patterns=["a", "b"]'], block) == {"patterns": ["a", "b"]}
    assert parse_params(["tool=issue_refund"], Control.revoke_tool) == {"tool": "issue_refund"}
