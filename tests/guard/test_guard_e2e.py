"""Guards against a real server in its own process: a change reaches them over the stream;
with the server killed, a fail-closed guard refuses everything and a fail-open one keeps
the last state; on reconnection both resynchronise to what changed meanwhile; a change made
by another process (the CLI) reaches them too; an expiry lapses on time on the server; a
tool call that needs approval waits for a person's decision in Blastwall."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from blastwall_guard import ApprovalRequired, Guard, Suspended, Unavailable
from tests.conftest import ROOT
from tests.support.containment_live import WAIT, Installation, wait_for

pytestmark = pytest.mark.slow

INVENTORY = ROOT / "examples" / "refund_agent" / "inventory.yaml"


def _pending(api: httpx.Client, into: list[dict[str, Any]]) -> bool:
    """Whether a tool call waits for approval; the waiting ones are added to `into`."""
    into.extend(api.get("/api/v1/controls/approvals?pending=true").json()["items"])
    return bool(into)


def test_stream_fail_modes_and_resync(tmp_path: Path) -> None:
    with Installation(tmp_path) as site:
        site.cli("inventory", "apply", str(INVENTORY))
        admin = {"Authorization": f"Bearer {site.token('alice', 'admin')}"}
        reader = site.token("refund-bot", "viewer")
        site.start()
        api = httpx.Client(base_url=site.url, headers=admin, timeout=WAIT)
        incident = api.post(
            "/api/v1/incidents",
            json={
                "title": "Refunds outside policy",
                "archetype": "agentic_misalignment",
                "severity": "SEV2",
                "systems": ["refund-bot"],
            },
        ).json()["id"]
        closed = Guard("refund-bot", site.url, reader, "closed", max_backoff=0.2)
        opened = Guard("refund-bot", site.url, reader, "open", max_backoff=0.2)
        try:
            assert closed.wait_ready(WAIT) and opened.wait_ready(WAIT)
            assert closed.check_tool("issue_refund").allowed

            action = api.post(
                f"/api/v1/incidents/{incident}/actions",
                json={
                    "control": "revoke_tool",
                    "params": {"tool": "issue_refund"},
                    "reason": "refunds outside policy",
                },
            ).json()
            assert action["state"] == "active"
            wait_for(
                "the revocation to reach both guards",
                lambda: closed.revision == opened.revision == 1,
            )
            for guard in (closed, opened):
                assert guard.check_tool("issue_refund").outcome == "deny"
                assert guard.check_tool("lookup_order").allowed

            site.kill()
            wait_for("both guards to notice", lambda: not closed.connected and not opened.connected)
            assert closed.check_tool("lookup_order").outcome == "deny"
            with pytest.raises(Unavailable, match="failing closed"):
                closed.check_call()
            assert opened.check_tool("issue_refund").outcome == "deny"
            assert opened.check_tool("lookup_order").allowed
            opened.check_call()

            # While the server is down, the CLI suspends the system in the database.
            site.cli("contain", str(incident), "--control", "suspend", "--reason", "escalated")
            site.start()
            wait_for("both guards to resynchronise", lambda: closed.connected and opened.connected)
            for guard in (closed, opened):
                assert guard.revision == 2
                with pytest.raises(Suspended, match="escalated"):
                    guard.check_call()

            # A change by another process while the server runs reaches the guards too.
            site.cli("containment", "revert", str(incident), "2", "--reason", "calmer now")
            wait_for(
                "the CLI's revert to reach both guards",
                lambda: closed.revision == opened.revision == 3,
            )
            closed.check_call()
            assert closed.check_tool("issue_refund").outcome == "deny"

            # A control with an expiry lapses by itself, and the timeline says so. (Not 1 s
            # ahead: on a loaded machine the request may reach the server after that.)
            soon = datetime.now(UTC) + timedelta(seconds=3)
            api.post(
                f"/api/v1/incidents/{incident}/actions",
                json={
                    "control": "require_approval",
                    "params": {"all": True},
                    "reason": "for a moment",
                    "expires_at": soon.isoformat(),
                },
            ).raise_for_status()
            wait_for("the expiry on the server", lambda: closed.revision == 5)
            assert closed.check_tool("lookup_order").allowed
            last = api.get(f"/api/v1/incidents/{incident}/timeline?kind=containment_expired")
            [entry] = last.json()["items"]
            assert entry["actor"] == "blastwall:expiry"
            assert "Lapsed at its expiry: require_approval(all=True)" in entry["text"]

            # A tool that needs approval: the guard asks a person in Blastwall and waits.
            api.post(
                f"/api/v1/incidents/{incident}/actions",
                json={
                    "control": "require_approval",
                    "params": {"tool": "send_email"},
                    "reason": "check outgoing mail",
                },
            ).raise_for_status()
            wait_for("the approval control", lambda: closed.revision == 6)
            sent: list[str] = []

            @closed.tool()
            def send_email(*, to: str) -> str:
                return f"sent to {to}"

            caller = threading.Thread(target=lambda: sent.append(send_email(to="c@example.com")))
            caller.start()
            asked: list[dict[str, Any]] = []
            wait_for(
                "the guard's request",
                lambda: _pending(api, asked),
            )
            assert asked[0]["tool"] == "send_email"
            assert asked[0]["arguments"] == {"to": "c@example.com"}
            api.post(
                f"/api/v1/controls/approvals/{asked[0]['id']}/decide", json={"approve": True}
            ).raise_for_status()
            caller.join(WAIT)
            assert sent == ["sent to c@example.com"]

            # A person refuses the next one: the guard says who and why.
            refused: list[ApprovalRequired] = []

            def refused_call() -> None:
                try:
                    send_email(to="d@example.com")
                except ApprovalRequired as exc:
                    refused.append(exc)

            caller = threading.Thread(target=refused_call)
            caller.start()
            waiting: list[dict[str, Any]] = []
            wait_for(
                "the second request",
                lambda: _pending(api, waiting),
            )
            api.post(
                f"/api/v1/controls/approvals/{waiting[0]['id']}/decide",
                json={"approve": False, "note": "not to that address"},
            ).raise_for_status()
            caller.join(WAIT)
            assert len(refused) == 1
            assert "denied by" in str(refused[0]) and "not to that address" in str(refused[0])
        finally:
            closed.close()
            opened.close()
            api.close()
