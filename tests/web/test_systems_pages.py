"""The systems pages: the inventory with open incidents and telemetry health, and one
system's components, controls, changes, incidents and telemetry."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from blastwall.db import Database, utcnow
from blastwall.inventory import service as inventory_service
from blastwall.inventory.schemas import ChangeIn, ChangeKind
from blastwall.telemetry.models import ContentCapture
from blastwall.web.pages import systems
from tests.conftest import Clients
from tests.support.evidence import add, evidence_dir, interaction
from tests.support.incidents import open_refund_incident
from tests.support.restricted import restricted_incident
from tests.support.web import Browser

__all__ = ["evidence_dir"]  # a fixture

H = dict[str, str]


def next_link(text: str) -> str:
    """The URL of the page's "next" link."""
    href = text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    return href.replace("&amp;", "&")


def test_inventory_lists_systems_with_open_incidents_and_health(
    app_client: TestClient, clients: Clients, admin: H, db: Database, inventory: list[str]
) -> None:
    open_refund_incident(app_client, admin, title="Refunds nobody asked for")
    with db.transaction() as session:
        add(session, [interaction(1, prompt="hi", system="support-chatbot")])
        session.add(ContentCapture(system_id="refund-agent", state="off", changed_at=utcnow()))
    person = Browser(TestClient(app_client.app), db, "viewer", "vic")
    answer = person.get("/ui/systems")
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "<h1>Systems</h1>" in text
    for system in inventory:
        assert f'href="/ui/systems/{system}"' in text
    row = text.split('href="/ui/systems/refund-agent"')[1].split("</tr>")[0]
    assert "content capture off" in row
    assert '/ui/incidents?system=refund-agent">1</a>' in row
    chatbot = text.split('href="/ui/systems/support-chatbot"')[1].split("</tr>")[0]
    assert "last span: 2026-11-01" in chatbot and "never seen" not in chatbot
    only = person.get("/ui/systems?type=predictive").text
    assert "/ui/systems/fraud-scoring" in only and "/ui/systems/refund-agent" not in only
    assert person.get("/ui/systems?type=nonsense").status_code == 422


def test_inventory_pages_by_keyset(
    app_client: TestClient, db: Database, inventory: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(systems, "PAGE", 2)
    person = Browser(app_client, db, "viewer", "vic")
    first = person.get("/ui/systems").text
    assert "/ui/systems/code-assistant" in first and "/ui/systems/refund-agent" not in first
    assert "First page" not in first
    second = person.get(next_link(first)).text
    assert "/ui/systems/refund-agent" in second and "/ui/systems/code-assistant" not in second
    assert "First page" in second


def test_system_page_shows_components_controls_changes_and_telemetry(
    app_client: TestClient, clients: Clients, admin: H, db: Database, inventory: list[str],
    evidence_dir: Path,
) -> None:  # fmt: skip
    incident = open_refund_incident(app_client, admin, title="Refunds nobody asked for")["id"]
    acted = app_client.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "revoke_tool", "params": {"tool": "issue-refund"}, "reason": "limit"},
        headers=admin,
    )
    assert acted.status_code == 201, acted.text
    with db.transaction() as session:
        inventory_change = ChangeIn(
            system_id="refund-agent", kind=ChangeKind.deploy, summary="deployed 2.4.1"
        )
        inventory_service.record_change(session, change=inventory_change, actor="ci")
    person = Browser(TestClient(app_client.app), db, "admin", "alice")
    text = person.get("/ui/systems/refund-agent").text
    assert "<h1>" in text and "Owner and risk" in text
    assert f'href="/ui/incidents/{incident}"' in text and "Refunds nobody asked for" in text
    controls = text.split('id="controls"')[1].split("</table>")[0]
    assert "revoke_tool" in controls and "tool=issue-refund" in controls and "limit" in controls
    assert "deployed 2.4.1" in text
    assert 'id="tools"' in text and "issue-refund" in text
    telemetry = text.split('id="telemetry"')[1].split("</dl>")[0]
    assert "unknown" in telemetry and "Ingest keys" in telemetry
    assert person.get("/ui/systems/no-such-system").status_code == 404


def test_system_page_hides_restricted_incidents_from_others(
    app_client: TestClient, clients: Clients, admin: H, db: Database, inventory: list[str],
    evidence_dir: Path,
) -> None:  # fmt: skip
    incident = restricted_incident(clients, admin, system="refund-agent")
    acted = app_client.post(
        f"/api/v1/incidents/{incident}/actions",
        json={"control": "suspend", "reason": "the insider's refunds"},
        headers=admin,
    )
    assert acted.status_code == 201, acted.text
    stranger = Browser(TestClient(app_client.app), db, "responder", "rita")
    text = stranger.get("/ui/systems/refund-agent").text
    assert "Insider" not in text and f"/ui/incidents/{incident}" not in text
    assert "the insider's refunds" not in text
    assert "an incident you cannot see" in text and "suspend" in text
    assert "Ingest keys" not in text  # only to those who manage tokens
    listed = stranger.get("/ui/systems").text
    row = listed.split('href="/ui/systems/refund-agent"')[1].split("</tr>")[0]
    assert "<td>0</td>" in row
    owner = Browser(TestClient(app_client.app), db, "admin", "alice")
    assert "Insider" in owner.get("/ui/systems/refund-agent").text
