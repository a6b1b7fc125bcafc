"""The incident page's triage, affected and evidence sections, each on its own page and as
the fragment htmx loads: what they show of real data, the checklist's tick, the affected
CSV, the evidence export, and who sees what."""

from __future__ import annotations

import csv
import html
import io
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall.containment.affected import CSV_COLUMNS
from blastwall.db import Database
from tests.conftest import Clients
from tests.support.evidence import evidence_dir
from tests.support.otlp_json import chat, document, span, tool
from tests.support.restricted import restricted_incident
from tests.support.web import Browser

__all__ = ["evidence_dir"]

H = dict[str, str]
API = "/api/v1"
REFUNDS = 30  # more than a page of the affected lists


def _signal(client: TestClient, headers: H, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "detector-test",
        "system": "refund-agent",
        "kind": "tool_not_approved",
        "archetype": "agentic_misalignment",
        "severity": "warning",
        "summary": "The agent issued a refund above its limit",
        **fields,
    }
    answer = client.post(f"{API}/signals", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _incident(client: TestClient, headers: H) -> int:
    """An incident on refund-agent from two signals, with a prompt change before them."""
    change = {
        "system_id": "refund-agent",
        "kind": "prompt_change",
        "summary": "refund limit prompt v7",
        "at": (datetime.now(UTC) - timedelta(hours=5)).isoformat(),
    }
    assert client.post(f"{API}/changes", json=change, headers=headers).status_code == 201
    first = _signal(client, headers)
    _signal(client, headers, kind="tool_loop", summary="The agent called issue_refund in a loop")
    candidate = client.get(f"{API}/candidates/{first['candidate_id']}", headers=headers).json()
    if candidate["incident_id"]:
        return int(candidate["incident_id"])
    accepted = client.post(
        f"{API}/candidates/{first['candidate_id']}/accept",
        json={"title": "Refund agent refunds without approval"},
        headers=headers,
    )
    assert accepted.status_code == 200, accepted.text
    return int(accepted.json()["incident_id"])


def _traffic(client: TestClient, headers: H) -> None:
    """REFUNDS refunds of refund-agent, one per conversation and user, and a chat."""
    start = time.time_ns() - 120 * 10**9
    spans = [span(chat("refund A-0 please", "done", **{"gen_ai.conversation.id": "c00"}))]
    for n in range(REFUNDS):
        attrs = {"gen_ai.conversation.id": f"c{n:02d}", "user.id": f"u{n:02d}"}
        arguments = {"order": f"A-{n}", "amount": 10, "currency": "EUR"}
        call = tool("issue_refund", arguments, **attrs)
        spans.append(span(call, name="execute_tool issue_refund", start_ns=start + n * 10**6))
    answer = client.post("/v1/traces", json=document("refund-agent", spans), headers=headers)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def scene(clients: Clients, admin: H, inventory: list[str], evidence_dir: Path) -> dict[str, Any]:
    """An incident with signals, a change, an attached playbook, refunds and a file kept as
    evidence; the responder rhea takes part in it."""
    client = clients.client
    incident = _incident(client, admin)
    attached = client.post(f"{API}/incidents/{incident}/playbooks", json={}, headers=admin)
    assert attached.status_code == 201, attached.text
    _traffic(client, admin)
    added = client.post(
        f"{API}/incidents/{incident}/evidence/files",
        params={"name": "ticket.txt", "note": "the customer's ticket"},
        content=b"refund me twice",
        headers={**admin, "Content-Type": "text/plain"},
    )
    assert added.status_code == 201, added.text
    return {"incident": incident, "steps": attached.json(), "item": added.json()}


def person(app_client: TestClient, db: Database, role: str, name: str) -> Browser:
    """A person signed in at a browser of their own (a cookie jar of their own)."""
    return Browser(TestClient(app_client.app), db, role, name)


def _join(clients: Clients, admin: H, incident: int, name: str) -> None:
    body = {"add_participants": [name]}
    answer = clients.client.patch(f"{API}/incidents/{incident}", json=body, headers=admin)
    assert answer.status_code == 200, answer.text


def test_triage_section_shows_the_pack_and_ticks_a_step(
    app_client: TestClient, db: Database, scene: dict[str, Any]
) -> None:
    incident = scene["incident"]
    rhea = person(app_client, db, "responder", "rhea")
    page = rhea.get(f"/ui/incidents/{incident}/triage")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert '<h2 id="triage-title">Triage pack</h2>' in page.text
    assert "refund limit prompt v7" in text  # the change before the first signal
    assert "tool_not_approved" in text and "tool_loop" in text  # the anomalies
    svg = re.search(r"<svg[^>]*>\s*<title id=\"([^\"]+)\">([^<]+)</title>", page.text)
    assert (
        svg and 'role="img"' in svg.group(0) and f'aria-labelledby="{svg.group(1)}"' in svg.group(0)
    )
    assert "Blast radius of incident" in svg.group(2)
    nodes = page.text.split('id="triage-radius-nodes"')[1]
    assert "refund-agent" in nodes and "involved system" in nodes and "also exposed" in nodes
    assert "Playbook checklist" in text
    step = next(s for s in scene["steps"] if s["kind"] not in ("decision",))
    form = f"/ui/incidents/{incident}/checklist/{step['id']}/complete"
    assert f'action="{form}"' in page.text
    assert f"Mark step {step['position']} done" in text

    ticked = rhea.post(form, note="checked the logs")
    assert ticked.status_code == 303, ticked.text
    assert ticked.headers["location"] == f"/ui/incidents/{incident}/triage"
    after = html.unescape(rhea.get(ticked.headers["location"]).text)
    assert f'action="{form}"' not in after
    assert "Done by rhea" in after and "checked the logs" in after

    fragment = rhea.get(f"/ui/incidents/{incident}/triage", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<h2 id="triage-title">')
    assert "<html" not in fragment.text


def test_triage_similar_incidents_are_links(
    clients: Clients, admin: H, app_client: TestClient, db: Database, inventory: list[str]
) -> None:
    client = clients.client
    past = client.post(
        f"{API}/incidents",
        json={
            "title": "Refund agent loops on issue_refund",
            "archetype": "agentic_misalignment",
            "severity": "SEV3",
            "systems": ["refund-agent"],
        },
        headers=admin,
    ).json()
    incident = _incident(client, admin)
    page = person(app_client, db, "viewer", "vic").get(f"/ui/incidents/{incident}/triage")
    assert f'<a href="/ui/incidents/{past["id"]}">#{past["id"]} ' in page.text
    # No checklist yet: the suggested playbook, and no button for a viewer to attach it.
    assert "it is not attached yet" in page.text and "Attach the" not in page.text


def _users(page: str) -> set[str]:
    """The users the affected section's users table lists."""
    table = page.split('id="affected-users"')[1].split('id="affected-effects"')[0]
    return set(re.findall(r"<tr><td>(u\d\d)</td>", table))


def test_affected_section_lists_totals_and_pages_by_key(
    app_client: TestClient, db: Database, scene: dict[str, Any]
) -> None:
    incident = scene["incident"]
    rhea = person(app_client, db, "responder", "rhea")
    page = rhea.get(f"/ui/incidents/{incident}/affected")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert '<h2 id="affected-title">Affected</h2>' in page.text
    assert f"Conversations ({REFUNDS})" in text and f"Users ({REFUNDS})" in text
    assert f"Side effects ({REFUNDS})" in text
    assert "issue-refund" in text and f"amount {REFUNDS * 10} EUR ({REFUNDS})" in text
    assert f'href="/ui/incidents/{incident}/affected.csv"' in page.text
    first = _users(page.text)
    assert len(first) == 25  # a page of users
    more = re.search(r'href="([^"]+)">More users</a>', page.text)
    assert more
    rest = rhea.get(html.unescape(more.group(1)))
    later = _users(rest.text)
    assert len(later) == REFUNDS - 25 and not later & first
    assert "More users" not in rest.text


def test_affected_csv_is_the_apis(
    clients: Clients, admin: H, app_client: TestClient, db: Database, scene: dict[str, Any]
) -> None:
    incident = scene["incident"]
    answer = person(app_client, db, "responder", "rhea").get(
        f"/ui/incidents/{incident}/affected.csv"
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="incident-{incident}-affected.csv"'
    )
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    refunds = [r for r in rows[1:] if r[CSV_COLUMNS.index("tool")] == "issue_refund"]
    assert len(refunds) == REFUNDS
    assert all(r[CSV_COLUMNS.index("side_effect")] == "True" for r in refunds)
    api = clients.client.get(f"{API}/incidents/{incident}/affected?format=csv", headers=admin)
    assert answer.text == api.text


def test_evidence_section_shows_items_custody_and_exports(
    clients: Clients, admin: H, app_client: TestClient, db: Database, scene: dict[str, Any]
) -> None:
    incident, item = scene["incident"], scene["item"]
    rhea = person(app_client, db, "responder", "rhea")
    _join(clients, admin, incident, "rhea")
    page = rhea.get(f"/ui/incidents/{incident}/evidence")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert '<h2 id="evidence-title">Evidence</h2>' in page.text
    assert f"{item['id']}. ticket.txt" in text and item["sha256"][:12] in text
    assert f"{item['size']} bytes" in text and "by alice" in text
    assert "<strong>collected</strong> by alice" in text  # its chain of custody
    assert "Not on legal hold." in text
    assert 'name="reason"' in page.text and 'for="export-reason"' in page.text

    refused = rhea.post(f"/ui/incidents/{incident}/evidence/export")
    assert refused.status_code == 422
    assert "reason" in html.unescape(refused.text)

    bundle = rhea.post(f"/ui/incidents/{incident}/evidence/export", reason="court request 7")
    assert bundle.status_code == 200, bundle.text
    assert bundle.headers["content-type"] == "application/zip"
    assert bundle.headers["content-disposition"].startswith("attachment;")
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    after = html.unescape(rhea.get(f"/ui/incidents/{incident}/evidence").text)
    assert "exported</strong> by rhea (why: court request 7)" in after


def test_a_viewer_sees_no_content_no_tick_and_no_export(
    app_client: TestClient, db: Database, scene: dict[str, Any]
) -> None:
    incident = scene["incident"]
    vic = person(app_client, db, "viewer", "vic")
    triage = vic.get(f"/ui/incidents/{incident}/triage")
    assert triage.status_code == 200 and "/complete" not in triage.text
    assert "Mark step" not in triage.text
    affected = vic.get(f"/ui/incidents/{incident}/affected")
    assert affected.status_code == 200 and "may not see the content" in affected.text
    assert "issue_refund" not in affected.text and "affected.csv" not in affected.text
    assert vic.get(f"/ui/incidents/{incident}/affected.csv").status_code == 403
    evidence = vic.get(f"/ui/incidents/{incident}/evidence")
    assert evidence.status_code == 200 and "ticket.txt" in evidence.text  # as the API lists
    assert "export-reason" not in evidence.text and "refund me twice" not in evidence.text
    export = vic.post(f"/ui/incidents/{incident}/evidence/export", reason="curious, really")
    assert export.status_code == 403


def test_a_restricted_incident_is_not_found_by_a_non_participant(
    clients: Clients, admin: H, app_client: TestClient, db: Database, inventory: list[str]
) -> None:
    secret = restricted_incident(clients, admin)
    otto = person(app_client, db, "responder", "otto")
    for name in ("triage", "affected", "evidence", "affected.csv"):
        answer = otto.get(f"/ui/incidents/{secret}/{name}")
        assert answer.status_code == 404, (name, answer.text)
        assert "Insider" not in answer.text
    export = otto.post(f"/ui/incidents/{secret}/evidence/export", reason="looking around")
    assert export.status_code == 404


def test_each_section_is_a_fragment_to_htmx_and_a_tick_returns_to_the_incident_page(
    app_client: TestClient, db: Database, scene: dict[str, Any]
) -> None:
    incident = scene["incident"]
    rhea = person(app_client, db, "responder", "rhea")
    for name, title in (
        ("triage", "Triage pack"),
        ("affected", "Affected"),
        ("evidence", "Evidence"),
    ):
        url = f"/ui/incidents/{incident}/{name}"
        fragment = rhea.get(url, headers={"HX-Request": "true"})
        assert fragment.status_code == 200, fragment.text
        assert fragment.text.lstrip().startswith(f'<h2 id="{name}-title">{title}</h2>')
        assert "<html" not in fragment.text
        boosted = rhea.get(url, headers={"HX-Request": "true", "HX-Boosted": "true"})
        assert "<html" in boosted.text and f'<h2 id="{name}-title">' in boosted.text
    step = scene["steps"][1]
    ticked = rhea.client.post(
        f"/ui/incidents/{incident}/checklist/{step['id']}/complete",
        data={"csrf_token": rhea.csrf, "idempotency_key": "tick-1", "skip": "true"},
        headers={"HX-Request": "true", "HX-Current-URL": f"http://t/ui/incidents/{incident}"},
        follow_redirects=False,
    )
    assert ticked.status_code == 303, ticked.text
    assert ticked.headers["location"] == f"/ui/incidents/{incident}#triage"
    assert "Skipped by rhea" in rhea.get(f"/ui/incidents/{incident}/triage").text
