"""The Communications section in a real browser: a commander drafts an update to customers,
edits and previews it, submits it; a second commander approves it; it is published. The
Obligations section's page is checked for accessibility too."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import Installation

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one server, one chromium


def _incident(site: Installation, token: str, title: str) -> int:
    answer = httpx.post(
        f"{site.url}/api/v1/incidents",
        json={
            "title": title,
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "severity_reason": "money leaves",
            "systems": ["refund-agent"],
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_draft_approve_and_publish_an_update(site: Installation, new_page: Any) -> None:
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:8]
    cora_token = site.token(f"comms-cora-{suffix}", "commander")
    carol_token = site.token(f"comms-carol-{suffix}", "commander")
    incident = _incident(site, cora_token, f"Refunds nobody asked for {suffix}")
    url = f"{site.url}/ui/incidents/{incident}/comms"

    cora = new_page()
    sign_in(cora, site.url, cora_token)
    cora.goto(url)
    expect(cora.get_by_role("heading", name="Communications", exact=True)).to_be_visible()
    expect(cora.locator("#cadence-customers")).to_contain_text("due")
    accessibility(cora)
    cora.get_by_role("button", name="New draft to customers").click()
    heading = cora.get_by_role("heading", name=re.compile(r"^Update \d+: Refunds nobody"))
    expect(heading).to_be_visible()
    update = int(re.findall(r"Update (\d+):", heading.inner_text())[0])
    article = cora.locator(f"#update-{update}")
    article.get_by_label("What happened").fill("Some refunds were issued that nobody asked for")
    article.get_by_label("What we are doing").fill("We stopped automatic refunds")
    form_key = article.locator('input[name="idempotency_key"]').first
    key = form_key.get_attribute("value") or ""
    article.get_by_role("button", name=f"Save update {update}").click()
    # Saved once the page is rendered anew: each rendering gives its forms new keys.
    expect(form_key).not_to_have_value(key)
    article = cora.locator(f"#update-{update}")
    expect(article.get_by_label("What we are doing")).to_have_value("We stopped automatic refunds")
    article.get_by_role("link", name="Preview what customers will see").click()
    expect(article.get_by_text("Nothing blocks publishing.")).to_be_visible()
    expect(article.locator("pre").first).to_contain_text("Some refunds were issued")
    accessibility(cora)
    article.get_by_role("button", name=f"Submit update {update} for approval").click()
    expect(cora.locator(f"#update-{update}")).to_contain_text("awaiting approval")

    carol = new_page()
    sign_in(carol, site.url, carol_token)
    carol.goto(url)
    carol.get_by_role("button", name=f"Approve and publish update {update}").click()
    published = carol.locator(f"#update-{update}")
    expect(published).to_contain_text("approved by comms-carol")
    expect(published).to_contain_text("As customers received it")
    expect(published.locator("pre")).to_contain_text("We stopped automatic refunds")
    expect(published.locator("textarea")).to_have_count(0)
    accessibility(carol)

    cora.goto(f"{site.url}/ui/incidents/{incident}/obligations")
    expect(cora.get_by_role("heading", name="Obligations", exact=True)).to_be_visible()
    accessibility(cora)
