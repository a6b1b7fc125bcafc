"""Containment from the interface in a real browser, obeyed by a real guard: a commander
opens an incident's containment section, previews and applies a control, and the refund
agent example (its guard streaming the site's controls) refuses the contained tool; the
revert from the section gives it back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import WAIT, Installation, wait_for
from tests.support.refund_agent import EXAMPLE, Agent

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one server, one chromium


def _system(site: Installation, tmp_path: Path) -> str:
    """A system of this test's own on the shared site: the refund agent example's, under a
    new id (so that no other test's controls reach its guard)."""
    system = f"ui-refund-{uuid.uuid4().hex[:8]}"
    text = (EXAMPLE / "inventory.yaml").read_text().replace("id: refund-bot", f"id: {system}", 1)
    path = tmp_path / "inventory" / f"{system}.yaml"
    path.parent.mkdir()
    path.write_text(text)
    site.cli("inventory", "apply", str(path))
    return system


def _incident(site: Installation, system: str) -> int:
    token = site.token(f"opener-{uuid.uuid4().hex[:8]}", "admin")
    answer = httpx.post(
        f"{site.url}/api/v1/incidents",
        json={
            "title": "Refunds outside policy (browser)",
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "systems": [system],
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=WAIT,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _revision(agent: Agent) -> int:
    return int(agent.ask("revision")["revision"] or 0)


def test_a_control_applied_in_the_section_stops_the_guarded_tool(
    site: Installation, new_page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    system = _system(site, tmp_path)
    incident = _incident(site, system)
    agent = Agent(site.url, site.token(f"{system}-guard", "viewer"), site.env, "--system", system)
    try:
        wait_for("the agent's guard", lambda: agent.ask("revision")["revision"] == 0)
        assert agent.ask("refund A-100 20")["ok"]

        page = new_page()
        sign_in(page, site.url, site.token(f"cmd-{uuid.uuid4().hex[:8]}", "commander"))
        page.goto(f"{site.url}/ui/incidents/{incident}/containment")
        expect(page.get_by_role("heading", name="Containment", exact=True)).to_be_visible()
        accessibility(page)

        offer = page.locator("details").filter(
            has=page.locator("summary", has_text="Revoke tool issue-refund")
        )
        offer.locator("summary").click()
        expect(offer).to_contain_text(f"system {system}, tool issue-refund")
        expect(offer).to_contain_text("Applies at once")
        accessibility(page)
        offer.get_by_label("Reason (on the timeline)").fill("refunds outside policy")
        offer.get_by_role("button", name="Apply: Revoke tool issue-refund").click()
        actions = page.locator("#containment-action-list")
        expect(actions).to_contain_text("revoke_tool")
        expect(actions.locator(".badge").first).to_have_text("active")
        accessibility(page)

        wait_for("the revocation to reach the guard", lambda: _revision(agent) >= 1)
        blocked = agent.ask("refund A-101 10")
        assert blocked.get("blocked") == "ToolDenied", blocked
        assert "refunds outside policy" in blocked["reason"]
        assert [s["tool"] for s in blocked["steps"]] == ["lookup_order"]

        page.get_by_label("Why revert (on the timeline)").fill("refund policy fixed")
        page.get_by_role("button", name="Revert action").click()
        expect(actions.locator(".badge").first).to_have_text("reverted")
        wait_for("the revert to reach the guard", lambda: _revision(agent) >= 2)
        assert agent.ask("refund A-101 10")["ok"]
    finally:
        agent.close()
