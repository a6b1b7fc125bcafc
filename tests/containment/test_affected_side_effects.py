"""`blastwall affected`: tool names in any spelling, side effects (successful calls of writing
tools) apart from other calls, the totals per tool that head the report, and a pattern that
reads the time range once."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.console import open_database
from blastwall.containment.affected import find_affected, permission_writes
from blastwall.db import Database
from blastwall.telemetry.models import Interaction
from tests.conftest import Clients
from tests.support.otlp_json import chat, document, span, tool

H = dict[str, str]
ADMIN = Principal(name="alice", role=Role.admin)


def _incident(client: TestClient, headers: H) -> int:
    body = {
        "title": "Refund agent issues refunds outside policy",
        "archetype": "agentic_misalignment",
        "severity": "SEV2",
        "systems": ["refund-agent"],
    }
    answer = client.post("/api/v1/incidents", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _call(name: str, arguments: dict[str, Any], conversation: str, **extra: Any) -> Any:
    attrs = {"gen_ai.conversation.id": conversation, "user.id": f"u-{conversation}", **extra}
    start = time.time_ns() - 60 * 10**9
    return span(tool(name, arguments, **attrs), name=f"execute_tool {name}", start_ns=start)


def _refund_traffic(client: TestClient, headers: H) -> None:
    """Spans of refund-agent as its application sends them (`issue_refund`, not the
    inventory's `issue-refund`): four refunds, one refused for want of approval, an order
    lookup, an e-mail and one refused."""
    spans = [
        span(
            chat("refund order A-1 please", "done", **{"gen_ai.conversation.id": "c1"}),
            start_ns=time.time_ns() - 61 * 10**9,
        ),
        _call("lookup_order", {"order": "A-1"}, "c1"),
        _call("issue_refund", {"order": "A-1", "amount": 40, "currency": "EUR"}, "c1"),
        _call("issue_refund", {"order": "A-2", "amount": 25.5, "currency": "EUR"}, "c2"),
        _call("issue_refund", {"order": "A-3", "amount": 150, "currency": "GBP"}, "c2"),
        _call(
            "issue_refund",
            {"order": "A-4", "amount": 180, "currency": "EUR"},
            "c3",
            **{"error.type": "ApprovalRequired"},
        ),
        _call("send_email", {"order": "A-1", "template": "refunded"}, "c1"),
        _call(
            "send_email",
            {"order": "A-4", "template": "refunded"},
            "c3",
            **{"error.type": "ToolDenied"},
        ),
    ]
    answer = client.post("/v1/traces", json=document("refund-agent", spans), headers=headers)
    assert answer.status_code == 200, answer.text


def test_both_spellings_find_the_same_calls_and_only_successful_writes_are_side_effects(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    _refund_traffic(client, admin)
    url = f"/api/v1/incidents/{incident}/affected?all=true"

    by_spelling = {}
    for spelling in ("issue-refund", "issue_refund", "Issue Refund"):
        answer = client.get(url, params={"tool": spelling}, headers=admin)
        assert answer.status_code == 200, answer.text
        by_spelling[spelling] = answer.json()
    found = by_spelling["issue-refund"]
    ids = sorted(r["interaction_id"] for r in found["interactions"])
    assert len(ids) == 4
    for other in by_spelling.values():
        assert sorted(r["interaction_id"] for r in other["interactions"]) == ids
        assert other["totals"] == found["totals"]
    # The stored name is the span's; the refused refund is a call, not a side effect.
    assert {r["tool"] for r in found["calls"]} == {"issue_refund"}
    assert len(found["calls"]) == 4
    assert sorted(r["tool_arguments"]["order"] for r in found["side_effects"]) == [
        "A-1",
        "A-2",
        "A-3",
    ]
    refused = [r for r in found["calls"] if not r["side_effect"]]
    assert [r["error_type"] for r in refused] == ["ApprovalRequired"]

    (refunds,) = found["totals"]
    assert refunds["tool"] == "issue-refund" and refunds["names"] == ["issue_refund"]
    assert refunds["access"] == "writing" and refunds["permissions"] == ["refunds:create"]
    assert (refunds["calls"], refunds["failed"], refunds["side_effects"]) == (4, 1, 3)
    assert refunds["sums"] == [
        {"argument": "amount", "currency": "EUR", "total": 65.5, "side_effects": 2},
        {"argument": "amount", "currency": "GBP", "total": 150, "side_effects": 1},
    ]
    # The totals head the report, right after what it covers.
    keys = list(found)
    assert keys.index("totals") < keys.index("conversations")

    everything = client.get(url, headers=admin).json()
    by_tool = {t["tool"]: t for t in everything["totals"]}
    assert list(by_tool) == ["issue-refund", "send-email", "lookup-order"]
    lookup = by_tool["lookup-order"]
    assert (lookup["access"], lookup["writes"], lookup["calls"]) == ("read-only", False, 1)
    assert lookup["side_effects"] == 0 and lookup["sums"] == []
    email = by_tool["send-email"]
    assert (email["access"], email["calls"], email["failed"], email["side_effects"]) == (
        "writing",
        2,
        1,
        1,
    )
    assert {r["tool"] for r in everything["calls"]} == {
        "issue_refund",
        "lookup_order",
        "send_email",
    }
    assert len(everything["calls"]) == 7 and len(everything["side_effects"]) == 4
    assert len(everything["interactions"]) == 8
    assert everything["notes"] == []
    c1 = next(c for c in everything["conversations"] if c["conversation_id"] == "c1")
    assert (c1["interactions"], c1["calls"], c1["side_effects"]) == (4, 3, 2)

    rows = list(csv.DictReader(io.StringIO(client.get(url + "&format=csv", headers=admin).text)))
    assert sorted(r["error_type"] for r in rows if r["error_type"]) == [
        "ApprovalRequired",
        "ToolDenied",
    ]
    # The quarantine takes the same filter, in the inventory's spelling.
    marked = client.post(
        f"/api/v1/incidents/{incident}/affected/quarantine",
        json={"reason": "held", "tool": "issue-refund", "all": True},
        headers=admin,
    ).json()
    assert marked["affected"] == 4


def test_permissions_read_or_write() -> None:
    reading = ["orders:read", "orders:get", "orders:list", "kb:search", "db:query", "x:view"]
    reading += ["orders:lookup", "s3:describe", "docs:fetch", "files:read-only", "t:list_all"]
    writing = ["refunds:create", "email:send", "docs:write", "t:update", "t:delete", "orders:*"]
    writing += ["refunds:issue", "jobs:execute", "orders:read-write", "admin", "orders:"]
    assert [p for p in reading if permission_writes(p)] == []
    assert [p for p in writing if not permission_writes(p)] == []


def test_pattern_reads_the_time_range_once(
    clients: Clients, admin: H, inventory: list[str], db: Database
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    _refund_traffic(client, admin)
    statements: list[str] = []

    def seen(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM interactions" in statement and "start_time >=" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.transaction() as session:
            found = find_affected(
                session,
                incident_id=incident,
                principal=ADMIN,
                pattern="A-1",
                tool="issue-refund",
            )
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    # The conversation of the matching lookup counts whole: its refund is in.
    assert found.scope == "pattern"
    assert [r.tool_arguments["order"] for r in found.side_effects] == ["A-1"]
    assert [t.side_effects for t in found.totals] == [1]
    touched = ("interactions.conversation_id IN", "interactions.id IN")
    whole_range = [s for s in statements if not any(t in s for t in touched)]
    assert len(whole_range) == 1, statements
    assert "input_messages" in whole_range[0]


INVENTORY = """
id: till-bot
name: Till bot
owner: {team: Shops}
type: agentic
risk: {tier: limited}
components:
  tools:
    - name: refund_cash
      permissions: [till:open, refunds:create]
    - name: count_till
      permissions: [till:count]
    - name: print-receipt
controls: [suspend]
"""


def _seed_till() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC) - timedelta(hours=1)

    def row(n: int, name: str, arguments: dict[str, Any]) -> Interaction:
        return Interaction(
            trace_id=f"{n:032x}",
            span_id=f"{n:016x}",
            system_id="till-bot",
            name="span",
            schema="genai",
            operation="execute_tool",
            conversation_id="c-1",
            user_id="u-1",
            tool_name=name,
            tool_arguments=arguments,
            content_policy="full",
            start_time=now + timedelta(seconds=n),
            end_time=now + timedelta(seconds=n),
            latency_ms=1.0,
        )

    db = open_database()
    try:
        with db.transaction() as session:
            session.add_all(
                [
                    row(1, "Refund.Cash", {"amount": 12, "currency": "EUR", "lines": 2}),
                    row(2, "REFUND_CASH", {"amount": 8, "currency": "eur", "lines": 1}),
                    row(3, "count_till", {"drawer": 1}),
                    row(4, "print_receipt", {"copies": 2}),
                    row(5, "open_drawer", {}),
                ]
            )
            session.commit()
    finally:
        db.engine.dispose()


def test_cli_totals_head_the_report_and_unknown_tools_count_as_writing(
    cli: CliRunner, tmp_path: Path
) -> None:
    spec = tmp_path / "till.yaml"
    spec.write_text(INVENTORY)

    def run(*args: str) -> Any:
        result = cli.invoke(app, list(args))
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    run("init")
    run("inventory", "apply", str(spec))
    run("incident", "open", "--title", "Till refunds", "--archetype", "agentic_misalignment",
        "--severity", "SEV2", "--system", "till-bot")  # fmt: skip
    _seed_till()
    inventory_name = run("affected", "1", "--tool", "refund-cash")
    span_name = run("affected", "1", "--tool", "REFUND_CASH")
    assert (
        json.loads(inventory_name.stdout)["interactions"]
        == json.loads(span_name.stdout)["interactions"]
    )
    assert inventory_name.stderr.splitlines()[0] == (
        "refund_cash (till-bot, writing): 2 call(s), 2 side effect(s); EUR: amount 20, lines 3"
    )
    report = run("affected", "1")
    found = json.loads(report.stdout)
    access = {t["tool"]: (t["access"], t["writes"], t["side_effects"]) for t in found["totals"]}
    assert access == {
        "refund_cash": ("writing", True, 2),
        "count_till": ("read-only", False, 0),
        "print-receipt": ("unknown", True, 1),
        "open_drawer": ("unknown", True, 1),
    }
    assert found["notes"] == [
        "open_drawer (till-bot): the inventory does not declare it: counted as writing",
        "print-receipt (till-bot): the inventory declares no permissions for it: counted as "
        "writing",
    ]
    assert "note: print-receipt (till-bot)" in report.stderr
    csv_report = run("affected", "1", "--tool", "print receipt", "--format", "csv")
    assert [r["tool"] for r in csv.DictReader(io.StringIO(csv_report.stdout))] == ["print_receipt"]
    assert csv_report.stderr.startswith("print-receipt (till-bot, unknown): 1 call(s)")


@pytest.mark.parametrize("spelling", ["lookup-order", "LOOKUP_ORDER", "lookup.order"])
def test_a_read_only_tool_in_any_spelling_has_no_side_effects(
    clients: Clients, admin: H, inventory: list[str], spelling: str
) -> None:
    client = clients.client
    incident = _incident(client, admin)
    _refund_traffic(client, admin)
    found = client.get(
        f"/api/v1/incidents/{incident}/affected",
        params={"tool": spelling, "all": "true"},
        headers=admin,
    ).json()
    assert [r["tool"] for r in found["calls"]] == ["lookup_order"]
    assert found["side_effects"] == []
    assert [(t["tool"], t["side_effects"]) for t in found["totals"]] == [("lookup-order", 0)]
