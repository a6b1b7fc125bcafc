"""The signals page: filters, keyset pagination, counts per system and detector, the
candidate or incident of each signal, and what a role may not see."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall.db import Database
from blastwall.signals.models import Signal
from blastwall.web.pages import signals
from tests.conftest import Clients
from tests.support.web import Browser

H = dict[str, str]


def _finding(system: str, detector: str, n: int, **more: Any) -> Signal:
    return Signal(
        source="detector",
        kind=detector,
        detector=detector,
        system_id=system,
        system_ref=system,
        severity="high",
        summary=f"{detector} finding {n} on {system}",
        created_by="test",
        **more,
    )


def _findings(db: Database) -> None:
    with db.transaction() as session:
        session.add_all(
            [_finding("support-chatbot", "injection", n) for n in range(3)]
            + [_finding("refund-agent", "pii_leak", n, excerpt="card 4111 ****") for n in range(2)]
        )


def _signal(client: TestClient, headers: H, summary: str, severity: str = "high") -> Any:
    answer = client.post(
        "/api/v1/signals",
        json={
            "source": "dlp",
            "kind": "exfiltration",
            "system": "refund-agent",
            "severity": severity,
            "summary": summary,
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_signals_are_listed_counted_and_filtered(
    app_client: TestClient, db: Database, inventory: list[str]
) -> None:
    _findings(db)
    person = Browser(app_client, db, "responder", "rita")
    answer = person.get("/ui/signals")
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "<h1>Signals</h1>" in text
    counts = text.split('id="signal-counts"')[1].split("</table>")[0]
    assert '<th scope="row">support-chatbot</th><td>injection</td>' in counts
    assert "system=support-chatbot&amp;detector=injection" in counts and ">3</a>" in counts
    assert ">2</a>" in counts
    assert "matched:</span> <q>card 4111 ****</q>" in text  # a responder sees content
    only = person.get("/ui/signals?detector=pii_leak").text
    assert "pii_leak finding 0 on refund-agent" in only and "injection finding" not in only
    assert 'value="pii_leak"' in only
    one = person.get("/ui/signals?system=support-chatbot&detector=injection&severity=high").text
    assert one.count("injection finding") == 3 and "pii_leak finding" not in one
    assert "finding" not in person.get("/ui/signals?severity=info").text
    by_system = person.get("/ui/signals?order=system").text
    first_rows = by_system.split('id="signals"')[1]
    assert first_rows.index("on refund-agent") < first_rows.index("on support-chatbot")
    bad = person.get("/ui/signals?severity=loud")
    assert bad.status_code == 422 and "severity" in bad.text


def test_signals_page_by_keyset(
    app_client: TestClient, db: Database, inventory: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _findings(db)
    monkeypatch.setattr(signals, "PAGE", 3)
    person = Browser(app_client, db, "viewer", "vic")
    first = person.get("/ui/signals?source=ignored").text
    assert first.count("finding ") == 3 and "pii_leak finding 1" in first
    href = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = person.get(href.replace("&amp;", "&")).text
    assert second.count("finding ") == 2 and "injection finding 0" in second
    assert "pii_leak finding" not in second and "Newest signals" in second
    # content only for roles that may see it
    assert "card 4111" not in first and "excerpt hidden from your role" in first


def test_a_restricted_incidents_signals_do_not_name_it(
    app_client: TestClient, clients: Clients, admin: H, db: Database, inventory: list[str]
) -> None:
    raised = _signal(app_client, admin, "customer table copied out")
    candidate = raised["candidate_id"]
    assert candidate, raised
    accepted = app_client.post(
        f"/api/v1/candidates/{candidate}/accept",
        json={
            "title": "Secret exfiltration",
            "archetype": "data_exfiltration",
            "visibility": "restricted",
        },
        headers=admin,
    )
    assert accepted.status_code == 200, accepted.text
    incident = accepted.json()["incident_id"]
    title = app_client.get(f"/api/v1/candidates/{candidate}", headers=admin).json()["title"]
    owner = Browser(TestClient(app_client.app), db, "admin", "alice")
    seen = owner.get("/ui/signals").text
    assert f'href="/ui/incidents/{incident}"' in seen and title in seen
    stranger = Browser(TestClient(app_client.app), db, "responder", "rita")
    text = stranger.get("/ui/signals").text
    assert "customer table copied out" in text  # the signal itself, as the API shows it
    assert title not in text and "Secret exfiltration" not in text
    assert f"/ui/incidents/{incident}" not in text and "not visible to you" in text
