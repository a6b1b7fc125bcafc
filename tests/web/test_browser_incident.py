"""The incident page in a real browser: a hypothesis added with the keyboard and refuted by
a commander in another browser, and entries written elsewhere appearing live."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import Installation

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one server, one chromium

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright").expect


def open_incident(site: Installation, title: str) -> tuple[int, dict[str, str]]:
    """Open an incident through the API with an admin token of its own; its number and the
    token's headers."""
    headers = {"Authorization": f"Bearer {site.token(f'admin-{uuid.uuid4().hex[:8]}', 'admin')}"}
    answer = httpx.post(
        f"{site.url}/api/v1/incidents",
        json={
            "title": title,
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "severity_reason": "refunds leave the company",
            "systems": ["refund-agent"],
        },
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"]), headers


def test_a_hypothesis_added_by_keyboard_is_refuted_by_a_commander_elsewhere(
    site: Installation, new_page: Any
) -> None:
    suffix = uuid.uuid4().hex[:8]
    number, _ = open_incident(site, f"Refunds nobody asked for {suffix}")
    url = f"{site.url}/ui/incidents/{number}"
    responder = new_page()
    sign_in(responder, site.url, site.token(f"rita-{suffix}", "responder"))
    responder.goto(url)
    expect(responder.get_by_role("heading", level=1)).to_contain_text(suffix)
    expect(responder.locator("#severity-reason")).to_have_text("refunds leave the company")
    accessibility(responder)
    responder.keyboard.press("h")
    expect(responder.locator("#entry-body")).to_be_focused()
    expect(responder.locator("#entry-kind")).to_have_value("hypothesis")
    responder.keyboard.type(f"The new prompt template {suffix}")
    responder.get_by_role("button", name="Add entry").click()
    guess = responder.locator("ol.timeline li.hypothesis", has_text=f"template {suffix}")
    expect(guess.locator(".badge")).to_have_text("open")

    commander = new_page()
    sign_in(commander, site.url, site.token(f"cora-{suffix}", "commander"))
    commander.goto(url)
    judged = commander.locator("ol.timeline li.hypothesis", has_text=f"template {suffix}")
    judged.get_by_label("Why (optional)").fill("the template did not change")
    judged.get_by_role("button", name=re.compile(r"^Refute")).click()
    expect(judged.locator(".badge")).to_have_text("refuted")
    expect(commander.locator("ol.timeline li.verdict").last).to_contain_text("did not change")
    accessibility(commander)
    # The responder's page learns it live: the hypothesis is replaced, the verdict added.
    expect(guess.locator(".badge")).to_have_text("refuted")
    expect(responder.locator("ol.timeline li.verdict").last).to_contain_text("did not change")


def test_entries_written_elsewhere_appear_live_without_a_reload(
    site: Installation, new_page: Any
) -> None:
    suffix = uuid.uuid4().hex[:8]
    number, headers = open_incident(site, f"Live timeline {suffix}")
    page = new_page()
    sign_in(page, site.url, site.token(f"vic-{suffix}", "viewer"))
    page.goto(f"{site.url}/ui/incidents/{number}")
    expect(page.locator("ol.timeline li").last).to_be_visible()
    page.evaluate("() => { window.notReloaded = true; }")
    api = f"{site.url}/api/v1/incidents/{number}/timeline"
    for kind in ("fact", "decision"):
        answer = httpx.post(
            api, json={"kind": kind, "text": f"{kind} from the API {suffix}"}, headers=headers
        )
        assert answer.status_code == 201, answer.text
    expect(page.locator("ol.timeline li.fact").last).to_contain_text(f"fact from the API {suffix}")
    expect(page.locator("ol.timeline li").last).to_contain_text(f"decision from the API {suffix}")
    moved = httpx.post(
        f"{site.url}/api/v1/incidents/{number}/status",
        json={"status": "investigating"},
        headers=headers,
    )
    assert moved.status_code == 200, moved.text
    expect(page.locator("ol.timeline li.system").last).to_contain_text("investigating")
    assert page.evaluate("() => window.notReloaded === true")
    assert page.locator("ol.timeline li.fact", has_text=suffix).count() == 1  # once only
    accessibility(page)
