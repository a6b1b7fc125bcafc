"""The incident page's Obligations section through a TestClient: the clocks with their time
left, why each obligation was raised, legal's decisions and submissions, and who may act."""

from __future__ import annotations

import re
import uuid
from html import unescape

from fastapi.testclient import TestClient

from blastwall.db import Database
from blastwall.obligations import service
from blastwall.obligations.profile import load_profile
from tests.conftest import ROOT, Clients
from tests.support.restricted import restricted_incident
from tests.support.web import Browser


def _apply_profile(db: Database) -> None:
    """The example organisation profile: an EU controller with a high-risk system."""
    path = ROOT / "examples" / "obligations" / "organisation.yaml"
    with db.transaction() as session:
        service.apply_profile(session, spec=load_profile(path), source=str(path), actor="test")


def person(app_client: TestClient, db: Database, role: str, name: str) -> Browser:
    return Browser(TestClient(app_client.app), db, role, name)


def _leak(clients: Clients, headers: dict[str, str]) -> int:
    """An incident on an EU high-risk system that leaked personal data, detected now."""
    client = clients.client
    answer = client.post(
        "/api/v1/incidents",
        json={
            "title": "Fraud scoring explanations leak customers' IBANs",
            "archetype": "data_exfiltration",
            "severity": "SEV2",
            "systems": ["fraud-scoring"],
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    incident = int(answer.json()["id"])
    facts = {
        "facts": [
            {"name": "personal_data_breach", "value": True},
            {"name": "fundamental_rights_infringement", "value": True, "state": "suspected"},
        ]
    }
    done = client.post(
        f"/api/v1/incidents/{incident}/obligations/facts", json=facts, headers=headers
    )
    assert done.status_code == 200, done.text
    return incident


def _obligation(page: str, rule: str) -> tuple[int, str]:
    """The number and the article of the obligation following `rule` on the page."""
    for found in re.finditer(r'<article class="panel obligation" id="obligation-(\d+)"', page):
        article = page[found.start() :].split("</article>")[0]
        if f"<code>{rule}</code>" in article:
            return int(found.group(1)), article
    raise AssertionError(f"no obligation of rule {rule}")


def test_clocks_with_time_left_and_legal_decides_and_submits(
    app_client: TestClient, db: Database, clients: Clients, inventory: list[str]
) -> None:
    _apply_profile(db)
    incident = _leak(clients, clients.headers("responder", "rita"))
    legal = person(app_client, db, "legal", "lena")
    url = f"/ui/incidents/{incident}/obligations"
    page = unescape(legal.get(url).text)
    assert '<h2 id="obligations-title">Obligations</h2>' in page
    number, gdpr = _obligation(page, "gdpr-33")
    assert "GDPR" in gdpr and "candidate" in gdpr
    assert re.search(r"running</span> (2 d 23 h|3 d 00 h) left", gdpr), gdpr  # 72 hours
    _, ai_act = _obligation(page, "ai-act-73-2")
    assert "fundamental_rights_infringement" in ai_act
    assert 'tag-suspected">suspected</span>' in ai_act  # a guess, marked as such
    assert "system eu_ai_act_high_risk: system fraud-scoring" in ai_act
    fragment = legal.get(url, headers={"HX-Request": "true"}).text
    assert fragment.startswith('<h2 id="obligations-title">Obligations</h2>')
    facts = page.split('id="obligations-facts-title"')[1]
    assert "personal_data_breach" in facts and "confirmed fact" in facts

    no_reason = legal.post(f"{url}/{number}/decision", decision="confirmed", reason="")
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    confirmed = legal.post(
        f"{url}/{number}/decision", decision="confirmed", reason="1,200 customers' IBANs"
    )
    assert confirmed.status_code == 303, confirmed.text
    assert confirmed.headers["location"] == f"{url}#obligation-{number}"
    _, gdpr = _obligation(unescape(legal.get(url).text), "gdpr-33")
    assert "confirmed" in gdpr and "decided by lena" in gdpr
    assert "Record a submission" in gdpr

    sent = legal.client.post(
        f"{url}/{number}/submissions",
        data={
            "csrf_token": legal.csrf,
            "idempotency_key": uuid.uuid4().hex,
            "kind": "initial",
            "submitted_at": "2026-12-08T10:30",
            "reference": "DPA-2026-0815",
        },
        files={"document": ("art33.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    _, gdpr = _obligation(unescape(legal.get(url).text), "gdpr-33")
    assert "submitted</span> 2026-12-08 10:30:00 UTC" in gdpr
    assert "reference DPA-2026-0815, document kept as evidence item" in gdpr


def test_who_may_decide_and_restricted_incidents(
    app_client: TestClient, db: Database, clients: Clients, inventory: list[str]
) -> None:
    _apply_profile(db)
    admin = clients.headers("admin", "alice")
    incident = _leak(clients, admin)
    url = f"/ui/incidents/{incident}/obligations"
    for role in ("viewer", "commander"):
        someone = person(app_client, db, role, f"{role}-1")
        page = someone.get(url)
        assert page.status_code == 200
        main = page.text.split('<main id="main">')[1]
        assert "gdpr-33" in main and 'method="post"' not in main
        number, _ = _obligation(unescape(page.text), "gdpr-33")
        refused = someone.post(f"{url}/{number}/decision", decision="confirmed", reason="no")
        assert refused.status_code == 403 and "decide obligations" in refused.text
    hidden = restricted_incident(clients, admin)
    outsider = person(app_client, db, "commander", "otto")
    assert outsider.get(f"/ui/incidents/{hidden}/obligations").status_code == 404
    assert (
        person(app_client, db, "legal", "lena")
        .get(f"/ui/incidents/{hidden}/obligations")
        .status_code
        == 200
    )  # legal sees restricted incidents
