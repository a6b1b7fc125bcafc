"""The systems, signals and hunts pages in a real browser: looking around, and a retro-hunt
started from its form and followed to its end."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import Installation

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one server, one chromium


def test_systems_signals_and_a_hunt_to_its_end(site: Installation, new_page: Any) -> None:
    from playwright.sync_api import expect

    page = new_page()
    sign_in(page, site.url, site.token(f"browser-hunter-{uuid.uuid4().hex[:8]}", "responder"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Systems").click()
    expect(page.get_by_role("heading", name="Systems", exact=True)).to_be_visible()
    accessibility(page)
    page.get_by_role("link", name="refund-agent", exact=True).click()
    expect(page.get_by_role("heading", name="Controls in force", exact=False)).to_be_visible()
    expect(page.get_by_role("heading", name="Telemetry health")).to_be_visible()
    accessibility(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Signals").click()
    expect(page.get_by_role("heading", name="Signals", exact=True).first).to_be_visible()
    accessibility(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Hunts").click()
    expect(page.get_by_role("heading", name="Start a retro-hunt")).to_be_visible()
    accessibility(page)
    page.get_by_label("Look for").select_option("text")
    page.get_by_label("Pattern, text or canary number").fill(f"needle-{uuid.uuid4().hex}")
    page.get_by_label("System").select_option("support-chatbot")
    page.get_by_role("button", name="Start the hunt").click()
    expect(page.locator("#hunt-state")).to_have_text("done")
    expect(page.get_by_role("heading", name="Matches")).to_be_visible()
    expect(page.get_by_role("button", name="Attach the matches as evidence")).to_be_visible()
    accessibility(page)
