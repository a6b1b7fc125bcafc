"""The incident page's sections in a real browser: triage (with a checklist step ticked),
affected and evidence, each on its own page, each checked for accessibility."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import Installation
from tests.support.otlp_json import chat, document, span, tool

pytestmark = pytest.mark.xdist_group("browser")  # one worker: one server, one chromium


def _incident(site: Installation, name: str, secret: str) -> int:
    """An incident on refund-agent with a checklist, refunds and a file kept as evidence,
    opened through the API by `name`, a commander with the token `secret`."""
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=site.url, headers=auth, timeout=30) as api:
        opened = api.post(
            "/api/v1/incidents",
            json={
                "title": f"Refunds nobody asked for {name}",
                "archetype": "agentic_misalignment",
                "severity": "SEV2",
                "systems": ["refund-agent"],
            },
        )
        assert opened.status_code == 201, opened.text
        incident = int(opened.json()["id"])
        attached = api.post(f"/api/v1/incidents/{incident}/playbooks", json={})
        assert attached.status_code == 201, attached.text
        conversation = {"gen_ai.conversation.id": f"conv-{name}", "user.id": f"user-{name}"}
        start = time.time_ns() - 60 * 10**9
        spans = [
            span(chat("refund A-1 please", "done", **conversation), start_ns=start),
            span(
                tool(
                    "issue_refund",
                    {"order": "A-1", "amount": 40, "currency": "EUR"},
                    **conversation,
                ),
                name="execute_tool issue_refund",
                start_ns=start + 10**6,
            ),
        ]
        sent = api.post("/v1/traces", json=document("refund-agent", spans))
        assert sent.status_code == 200, sent.text
        kept = api.post(
            f"/api/v1/incidents/{incident}/evidence/files",
            params={"name": "ticket.txt"},
            content=b"refund me twice",
            headers={"Content-Type": "text/plain"},
        )
        assert kept.status_code == 201, kept.text
    return incident


def test_the_three_sections_of_an_incident(site: Installation, new_page: Any) -> None:
    name = f"cmd-{uuid.uuid4().hex[:8]}"
    secret = site.token(name, "commander")
    incident = _incident(site, name, secret)
    page = new_page()
    sign_in(page, site.url, secret)

    page.goto(f"{site.url}/ui/incidents/{incident}/triage")
    page.get_by_role("heading", name="Triage pack", level=2).wait_for()
    assert page.get_by_role("img", name="Blast radius of incident").is_visible()
    accessibility(page)
    page.get_by_role("button", name="Mark step 1 done").click()
    page.get_by_text(f"Done by {name}").wait_for()
    assert page.get_by_role("button", name="Mark step 1 done").count() == 0
    accessibility(page)

    page.goto(f"{site.url}/ui/incidents/{incident}/affected")
    page.get_by_role("heading", name="Affected", level=2).wait_for()
    page.get_by_role("cell", name=f"conv-{name}").first.wait_for()
    accessibility(page)

    page.goto(f"{site.url}/ui/incidents/{incident}/evidence")
    page.get_by_role("heading", name="Evidence", level=2).wait_for()
    page.get_by_text("ticket.txt").first.wait_for()
    assert page.get_by_label("Why you export it").is_visible()
    accessibility(page)
