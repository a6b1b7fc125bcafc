"""The refund story, end to end with the example agent in its own process: a refund cannot
be issued after "Applied" without Blastwall saying so. Revoking the refund tool by the
inventory's name (`issue-refund`) or the code's (`issue_refund`) denies it in a guarded
agent; an agent whose guard is not deployed goes on refunding, and its telemetry raises a
critical `containment_breach` signal on the incident within the grace period."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.containment_live import Installation, wait_for
from tests.support.refund_agent import EXAMPLE, Agent

pytestmark = pytest.mark.slow

GRACE = 30


def _contain(api: httpx.Client, tool: str) -> tuple[int, dict[str, Any]]:
    incident = api.post(
        "/api/v1/incidents",
        json={
            "title": f"Refunds outside policy ({tool})",
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "systems": ["refund-bot"],
        },
    ).json()["id"]
    answer = api.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "revoke_tool", "params": {"tool": tool}, "reason": "refunds"},
    )
    assert answer.status_code == 201, answer.text
    assert "Applied" in answer.json()["message"]
    return int(incident), answer.json()


@pytest.mark.parametrize("tool", ["issue-refund", "issue_refund"])
def test_a_guarded_agent_issues_no_refund_after_applied(tmp_path: Path, tool: str) -> None:
    with Installation(tmp_path) as site:
        site.cli("inventory", "apply", str(EXAMPLE / "inventory.yaml"))
        api = httpx.Client(
            base_url=site.url,
            headers={"Authorization": f"Bearer {site.token('alice', 'admin')}"},
            timeout=10,
        )
        site.start()
        agent = Agent(site.url, site.token("refund-bot", "viewer"), site.env)
        try:
            wait_for("the agent's guard", lambda: agent.ask("revision")["revision"] == 0)
            assert agent.ask("refund A-100 20")["ok"]
            _, action = _contain(api, tool)
            assert action["params"] == {"tool": "issue-refund"}
            revision = api.get("/api/v1/controls?system=refund-bot").json()["revision"]
            wait_for("the revocation", lambda: agent.ask("revision")["revision"] >= revision)
            blocked = agent.ask("refund A-101 10")
            assert blocked["blocked"] == "ToolDenied", blocked
            assert [s["tool"] for s in blocked["steps"]] == ["lookup_order"]
        finally:
            agent.close()
            api.close()


def test_an_unguarded_agent_that_refunds_after_applied_is_a_breach(tmp_path: Path) -> None:
    with Installation(tmp_path) as site:
        site.env["BLASTWALL_CONTAINMENT_SETTLE_SECONDS"] = "0.5"
        site.cli("inventory", "apply", str(EXAMPLE / "inventory.yaml"))
        admin = site.token("alice", "admin")
        api = httpx.Client(
            base_url=site.url, headers={"Authorization": f"Bearer {admin}"}, timeout=10
        )
        site.start()
        sender = site.token("refund-bot-telemetry", "responder")
        agent = Agent(
            site.url,
            site.token("refund-bot", "viewer"),
            site.env,
            "--no-guard",
            "--telemetry",
            "--telemetry-token",
            sender,
        )
        try:
            incident, action = _contain(api, "issue-refund")
            assert action["verification"] == "pending"
            time.sleep(1.0)  # past the 0.5 s the guards are given to receive the control
            refunded = agent.ask("refund A-101 10")
            assert refunded["ok"], refunded  # the refund went out: nothing stopped it

            def breach() -> dict[str, Any] | None:
                found = api.get("/api/v1/signals", params={"kind": "containment_breach"}).json()[
                    "items"
                ]
                return found[0] if found else None

            wait_for("the containment breach signal", lambda: breach() is not None)
            signal = breach()
            assert signal is not None
            assert signal["severity"] == "critical"
            assert signal["attributes"]["incident_id"] == incident
            assert signal["attributes"]["spans"][0]["tool_name"] == "issue_refund"
            causes = signal["attributes"]["likely_causes"]
            assert any("not deployed" in c for c in causes), causes
            raised = datetime.fromisoformat(signal["created_at"])
            first = datetime.fromisoformat(signal["attributes"]["spans"][0]["start_time"])
            assert (raised - first).total_seconds() < GRACE
            actions = api.get(f"/api/v1/incidents/{incident}/actions").json()["items"]
            assert actions[0]["verification"] == "breached"
            kinds = [
                e["kind"] for e in api.get(f"/api/v1/incidents/{incident}/timeline").json()["items"]
            ]
            assert "containment_breach" in kinds
            listed = site.cli("containment", "list", str(incident))
            assert "breached" in listed
        finally:
            agent.close()
            api.close()
