"""The interface in a real browser: signing in and out, the incidents page, shortcuts."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import Installation

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one server, one chromium


def test_sign_in_look_around_and_sign_out(site: Installation, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{site.url}/")
    page.wait_for_url("**/ui/login**")
    accessibility(page)
    sign_in(page, site.url, site.token("browser-admin", "admin"))
    assert page.get_by_role("heading", name="Incidents", exact=True).is_visible()
    accessibility(page)
    page.keyboard.press("?")
    assert page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
    accessibility(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(f"{site.url}/ui/incidents")
    page.wait_for_url("**/ui/login?next=**")


def _api(site: Installation, token: str) -> httpx.Client:
    return httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_responder_accepts_a_candidate(site: Installation, new_page: Any) -> None:
    token = site.token(f"triager-{uuid.uuid4().hex[:8]}", "responder")
    marker = uuid.uuid4().hex[:8]
    with _api(site, token) as api:
        raised = api.post(
            "/api/v1/signals",
            json={
                "source": "guardrail",
                "system": "code-assistant",
                "kind": "jailbreak_attempt",
                "archetype": "prompt_injection",
                "severity": "high",
                "summary": f"Instruction override {marker}",
            },
        )
        assert raised.status_code == 201, raised.text
    page = new_page()
    sign_in(page, site.url, token)
    row = page.locator("tr", has_text=f"Instruction override {marker}").first
    expect(row).to_be_visible()
    accessibility(page)
    row.get_by_role("button", name="Accept").click()
    page.wait_for_url(re.compile(r".*/ui/incidents/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(marker)


def test_a_viewer_sees_no_actions_and_a_restricted_incident_not_at_all(
    site: Installation, new_page: Any
) -> None:
    admin = site.token(f"admin-{uuid.uuid4().hex[:8]}", "admin")
    secret = f"Restricted {uuid.uuid4().hex[:8]}"
    with _api(site, admin) as api:
        made = api.post(
            "/api/v1/incidents",
            json={
                "title": secret,
                "archetype": "data_exfiltration",
                "severity": "SEV2",
                "systems": ["support-chatbot"],
                "visibility": "restricted",
            },
        )
        assert made.status_code == 201, made.text
        hidden_id = made.json()["id"]
        api.post(
            "/api/v1/signals",
            json={
                "source": "guardrail",
                "system": "fraud-scoring",
                "kind": "jailbreak_attempt",
                "archetype": "prompt_injection",
                "severity": "high",
                "summary": "Candidate a viewer may not decide",
            },
        )
    page = new_page()
    sign_in(page, site.url, site.token(f"viewer-{uuid.uuid4().hex[:8]}", "viewer"))
    expect(page.get_by_role("heading", name="Incidents", exact=True)).to_be_visible()
    assert page.get_by_role("button", name="Accept").count() == 0
    assert page.get_by_text(secret).count() == 0
    missing = page.goto(f"{site.url}/ui/incidents/{hidden_id}")
    assert missing is not None and missing.status == 404
    assert secret not in page.content()
    # A form a viewer crafts by hand is refused, CSRF token and all.
    page.goto(f"{site.url}/ui/incidents")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = page.request.post(
        f"{site.url}/ui/candidates/1/accept",
        form={"csrf_token": csrf or "", "idempotency_key": uuid.uuid4().hex},
    )
    assert refused.status == 403
