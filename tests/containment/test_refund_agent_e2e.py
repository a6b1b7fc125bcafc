"""The refund agent example in its own process, obeying containment: revoking issue_refund
blocks the next refund while order look-ups still work; reverting restores refunds."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.containment_live import Installation, wait_for
from tests.support.refund_agent import EXAMPLE, Agent

pytestmark = pytest.mark.slow


def test_revoke_blocks_refunds_and_revert_restores(tmp_path: Path) -> None:
    with Installation(tmp_path) as site:
        site.cli("inventory", "apply", str(EXAMPLE / "inventory.yaml"))
        admin = {"Authorization": f"Bearer {site.token('alice', 'admin')}"}
        site.start()
        agent = Agent(site.url, site.token("refund-bot", "viewer"), site.env)
        api = httpx.Client(base_url=site.url, headers=admin, timeout=10)
        try:
            wait_for("the agent's guard", lambda: agent.ask("revision")["revision"] == 0)
            first = agent.ask("refund A-100 20")
            assert first["ok"], first
            assert [s["tool"] for s in first["steps"]] == [
                "lookup_order",
                "issue_refund",
                "send_email",
            ]

            incident = api.post(
                "/api/v1/incidents",
                json={
                    "title": "Refunds outside policy",
                    "archetype": "agentic_misalignment",
                    "severity": "SEV2",
                    "systems": ["refund-bot"],
                },
            ).json()["id"]
            action = api.post(
                f"/api/v1/incidents/{incident}/actions",
                json={
                    "control": "revoke_tool",
                    "params": {"tool": "issue_refund"},
                    "reason": "refunds outside policy",
                },
            ).json()
            revision = api.get("/api/v1/controls?system=refund-bot").json()["revision"]
            wait_for("the revocation", lambda: agent.ask("revision")["revision"] >= revision)

            blocked = agent.ask("refund A-101 10")
            assert not blocked["ok"]
            assert blocked["blocked"] == "ToolDenied"
            assert "issue_refund is not allowed now" in blocked["reason"]
            assert "refunds outside policy" in blocked["reason"]
            assert [s["tool"] for s in blocked["steps"]] == ["lookup_order"]  # look-up ran
            looked = agent.ask("status A-101")
            assert looked["ok"] and looked["steps"][0]["result"] == {"order": "A-101", "total": 45}

            api.post(
                f"/api/v1/incidents/{incident}/actions/{action['id']}/revert",
                json={"reason": "refund policy fixed"},
            ).raise_for_status()
            wait_for("the revert", lambda: agent.ask("revision")["revision"] >= revision + 1)
            again = agent.ask("refund A-101 10")
            assert again["ok"], again
            entries = api.get(f"/api/v1/incidents/{incident}/timeline").json()["items"]
            verdicts = ("containment_verified", "containment_unverified")  # after the grace
            kinds = [e["kind"] for e in entries if e["kind"] not in verdicts]
            assert kinds[:5] == [
                "created",
                "evidence_snapshot",
                "containment_applied",
                "status_changed",  # triage -> contained, at the time it was applied
                "evidence_snapshot",
            ]
            assert kinds[5:7] == ["containment_reverted", "containment_ended"]
        finally:
            agent.close()
            api.close()
