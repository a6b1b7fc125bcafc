"""The incident page's containment section through a TestClient: the controls offered on the
incident's systems with their preview, applying one, a second person's approval, revert,
and who may do what (viewers see no buttons and are refused; a restricted incident is not
disclosed)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall.db import Database
from blastwall.obligations import service as obligations
from blastwall.obligations.profile import load_profile
from blastwall.settings import Settings
from tests.conftest import ROOT, Clients
from tests.support.incidents import open_refund_incident
from tests.support.restricted import restricted_incident
from tests.support.web import Browser

People = Callable[[str, str], Browser]


@pytest.fixture
def person(app_client: TestClient, db: Database, inventory: list[str]) -> People:
    """A signed-in person of a role, each with a browser (cookie jar) of their own."""

    def make(role: str, name: str) -> Browser:
        return Browser(TestClient(app_client.app), db, role, name)

    return make


def _incident(clients: Clients, **fields: Any) -> int:
    return int(
        open_refund_incident(clients.client, clients.headers("admin", "alice"), **fields)["id"]
    )


def _section(who: Browser, incident: int) -> str:
    answer = who.get(f"/ui/incidents/{incident}/containment")
    assert answer.status_code == 200, answer.text
    return str(answer.text)


def _offer(page: str, label: str) -> str:
    """The preview and form of the offer whose summary is `label`."""
    found = re.search(
        r"<details[^>]*>\s*<summary>" + re.escape(label) + r"[ <].*?</details>", page, re.S
    )
    assert found, f"no offer {label!r} in the section"
    return found.group(0)


def _row(page: str, action: int) -> str:
    found = re.search(rf'<tr id="action-{action}">.*?</tr>', page, re.S)
    assert found, f"no action {action} in the section"
    return found.group(0)


def _actions(clients: Clients, incident: int) -> list[dict[str, Any]]:
    answer = clients.client.get(
        f"/api/v1/incidents/{incident}/actions", headers=clients.headers("admin", "alice")
    )
    return list(answer.json()["items"])


def _apply(who: Browser, incident: int, sent_from: str | None = None, **fields: str) -> Any:
    """Apply a control through the section's form; `sent_from`: the page it was on."""
    fields.setdefault("system", "refund-agent")
    fields.setdefault("reason", "refunds outside policy")
    data = {"csrf_token": who.csrf, "idempotency_key": uuid.uuid4().hex, **fields}
    headers = {"HX-Current-URL": f"http://testserver{sent_from}"} if sent_from else {}
    return who.client.post(
        f"/ui/incidents/{incident}/containment/actions",
        data=data,
        headers=headers,
        follow_redirects=False,
    )


def test_the_section_offers_the_systems_controls_each_with_a_preview(
    clients: Clients, person: People
) -> None:
    incident = _incident(clients)
    carol = person("commander", "carol")
    page = _section(carol, incident)
    assert '<h2 id="containment-title">Containment</h2>' in page
    assert "<html" in page  # without htmx, a page of its own around the fragment
    labels = re.findall(r"<summary>([^<]+)", page)
    assert labels == [
        "Suspend refund-agent",
        "Suspend agent refund-agent",
        "Suspend agent order-lookup",
        "Revoke tool issue-refund",
        "Revoke tool lookup-order",
        "Revoke tool send-email",
        "Require approval for tool issue-refund",
        "Require approval for tool lookup-order",
        "Require approval for tool send-email",
        "Require approval for every tool",
        "Pin prompt refund-policy to a version",
        "Roll back prompt refund-policy",
        "Pin model gpt-4o to a version",
        "Roll back model gpt-4o",
        "Limit the rate of model calls",
        "Switch to the manual fallback",
    ]  # the inventory's controls on refund-agent, on each tool, agent, prompt and model

    revoke = _offer(page, "Revoke tool issue-refund")
    assert "<code>revoke_tool</code>" in revoke
    assert "system refund-agent, tool issue-refund" in revoke
    assert "Denies every call of the tool issue-refund on refund-agent" in revoke
    assert "Stays in force until someone reverts it" in revoke
    assert "Applies at once: the containment policy pre-authorises revoke_tool" in revoke
    assert 'name="tool" value="issue-refund"' in revoke
    assert "Apply: Revoke tool issue-refund" in revoke

    fallback = _offer(page, "Switch to the manual fallback")
    assert "Refund requests queue for the payments operations team" in fallback
    pin = _offer(page, "Pin prompt refund-policy to a version")
    assert "<option>7</option>" in pin
    rollback = _offer(page, "Roll back prompt refund-policy")
    assert "Cannot be applied now" in rollback and "<form" not in rollback

    fragment = carol.get(
        f"/ui/incidents/{incident}/containment", headers={"HX-Request": "true"}
    ).text
    assert fragment.lstrip().startswith('<h2 id="containment-title">Containment</h2>')
    # An action sent from the incident page leads back to it, from the section's page to that.
    from_page = _apply(
        carol, incident, sent_from=f"/ui/incidents/{incident}", control="manual_fallback"
    )
    assert from_page.headers["location"] == f"/ui/incidents/{incident}#containment"


def test_applying_a_control_creates_the_action_and_tells_the_state(
    clients: Clients, person: People
) -> None:
    incident = _incident(clients)
    carol = person("commander", "carol")
    done = _apply(carol, incident, control="revoke_tool", tool="issue_refund", expires="1h")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/ui/incidents/{incident}/containment"
    [action] = _actions(clients, incident)
    assert (action["state"], action["params"]) == ("active", {"tool": "issue-refund"})
    assert action["requested_by"] == "carol" and action["expires_at"] is not None

    page = _section(carol, incident)
    row = _row(page, action["id"])
    assert "revoke_tool" in row and "tool=issue-refund" in row
    assert "active" in row and "requested by carol" in row and "expires " in row
    assert "pending" in row  # its verification, within the grace period
    assert f"Revert action {action['id']}" in row
    assert "In force now</strong> (revision 1):</p>" in page
    assert (
        f"<li>revoke_tool tool=issue-refund (action {action['id']} of incident #{incident}, "
        in page
    )

    limited = _apply(
        carol,
        incident,
        sent_from=f"/ui/incidents/{incident}/containment",
        control="rate_limit",
        per_minute="5",
    )
    assert limited.headers["location"] == f"/ui/incidents/{incident}/containment"
    assert _actions(clients, incident)[-1]["params"] == {"per_minute": 5}
    wrong = _apply(carol, incident, control="rate_limit", per_minute="0")
    assert wrong.status_code == 422
    assert "per_minute" in wrong.text

    chatbot = _incident(clients, systems=["support-chatbot", "refund-agent"])
    page = _section(carol, chatbot)
    block = _offer(page, "Block inputs that match patterns")
    assert "system support-chatbot" in block and 'name="patterns"' in block
    patterns = "(?i)ignore previous\n\n(?i)developer mode\n"
    blocked = _apply(
        carol, chatbot, system="support-chatbot", control="block_input", patterns=patterns
    )
    assert blocked.status_code == 303, blocked.text
    [action] = _actions(clients, chatbot)
    assert action["params"] == {"patterns": ["(?i)ignore previous", "(?i)developer mode"]}
    assert "Controls of Refund agent (refund-agent)" in page  # each system of the incident


def test_a_control_the_policy_does_not_preauthorise_waits_for_another_person(
    clients: Clients, person: People, settings: Settings, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "approvers: [commander, admin]\n"
        "preauthorised:\n  - {roles: [commander], controls: [revoke_tool], severities: all}\n"
    )
    settings.containment_policy = policy
    incident = _incident(clients)
    carol, cole = person("commander", "carol"), person("commander", "cole")
    suspend = _offer(_section(carol, incident), "Suspend refund-agent")
    assert "Needs a second person&#39;s approval" in suspend
    assert "Ask for approval: Suspend refund-agent" in suspend

    assert _apply(carol, incident, control="suspend").status_code == 303
    [action] = _actions(clients, incident)
    assert action["state"] == "pending_approval"
    mine = _row(_section(carol, incident), action["id"])
    assert "awaiting approval by another person" in mine
    assert "Approve action" not in mine and "Reject action" not in mine
    assert f"Withdraw action {action['id']}" in mine
    url = f"/ui/incidents/{incident}/containment/actions/{action['id']}"
    refused = carol.post(f"{url}/approve")
    assert refused.status_code == 409 and "a second person approves it" in refused.text

    theirs = _row(_section(cole, incident), action["id"])
    assert f"Approve action {action['id']}" in theirs
    assert f"Reject action {action['id']}" in theirs
    assert cole.post(f"{url}/approve", note="agreed").status_code == 303
    [approved] = _actions(clients, incident)
    assert (approved["state"], approved["approved_by"]) == ("active", "cole")
    row = _row(_section(carol, incident), action["id"])
    assert "approved by cole" in row and "Approve action" not in row

    assert _apply(carol, incident, control="manual_fallback").status_code == 303
    second = _actions(clients, incident)[-1]["id"]
    rejecting = f"/ui/incidents/{incident}/containment/actions/{second}/reject"
    assert cole.post(rejecting, note="not needed").status_code == 303
    assert _actions(clients, incident)[-1]["state"] == "rejected"
    assert "rejected" in _row(_section(carol, incident), second)


def test_under_an_ai_act_obligation_an_altering_control_asks_why(
    clients: Clients, person: People, db: Database
) -> None:
    """Art. 73(6): the offer says so and its form asks for the acknowledgement the API
    wants; sent, it is on the action's timeline."""
    profile = ROOT / "examples" / "obligations" / "organisation.yaml"
    with db.transaction() as session:
        obligations.apply_profile(
            session, spec=load_profile(profile), source=str(profile), actor="test"
        )
    admin = clients.headers("admin", "alice")
    incident = _incident(
        clients,
        archetype="data_exfiltration",
        systems=["fraud-scoring"],
        detected_at="2026-10-03T11:00:00+02:00",
    )
    facts = {"facts": [{"name": "fundamental_rights_infringement", "state": "suspected"}]}
    url = f"/api/v1/incidents/{incident}/obligations/facts"
    assert clients.client.post(url, json=facts, headers=admin).status_code == 200
    carol = person("commander", "carol")
    page = _section(carol, incident)
    pin = _offer(page, "Pin model fraud-gbm to a version")
    assert "AI Act serious-incident obligation" in pin and 'name="acknowledgement"' in pin
    assert 'name="acknowledgement"' not in _offer(page, "Suspend fraud-scoring")
    version = re.search(r"<option>([^<]+)</option>", pin)
    assert version
    fields = {"system": "fraud-scoring", "control": "pin_model_version", "model": "fraud-gbm"}
    refused = _apply(carol, incident, **fields, version=version.group(1))
    assert refused.status_code == 422 and "acknowledgement" in refused.text
    done = _apply(
        carol, incident, **fields, version=version.group(1), acknowledgement="authority_informed"
    )
    assert done.status_code == 303, done.text
    assert _actions(clients, incident)[0]["state"] == "active"


def test_revert_lifts_the_control(clients: Clients, person: People) -> None:
    incident = _incident(clients)
    rita = person("responder", "rita")
    assert _apply(rita, incident, control="revoke_tool", tool="issue-refund").status_code == 303
    [action] = _actions(clients, incident)
    url = f"/ui/incidents/{incident}/containment/actions/{action['id']}/revert"
    assert rita.post(url, reason="").status_code == 422  # the API's RevertIn: a reason
    assert rita.post(url, reason="refund policy fixed").status_code == 303
    [reverted] = _actions(clients, incident)
    assert (reverted["state"], reverted["ended_by"]) == ("reverted", "rita")
    page = _section(rita, incident)
    row = _row(page, action["id"])
    assert "reverted" in row and "refund policy fixed" in row and "Revert action" not in row
    assert "In force now</strong> (revision 2): none." in page


def test_a_viewer_sees_no_buttons_and_is_refused(clients: Clients, person: People) -> None:
    incident = _incident(clients)
    carol = person("commander", "carol")
    _apply(carol, incident, control="revoke_tool", tool="issue-refund")
    [action] = _actions(clients, incident)
    vera = person("viewer", "vera")
    page = _section(vera, incident)
    assert "revoke_tool" in _row(page, action["id"])
    main = page.split('<main id="main">')[1].split("</main>")[0]
    assert "<form" not in main and "<button" not in main
    assert "Your role (viewer) may not apply them" in page
    refused = _apply(vera, incident, control="suspend")
    assert refused.status_code == 403
    base = f"/ui/incidents/{incident}/containment/actions/{action['id']}"
    assert vera.post(f"{base}/revert", reason="no").status_code == 403
    assert vera.post(f"{base}/approve").status_code == 403
    assert [a["state"] for a in _actions(clients, incident)] == ["active"]


def test_a_restricted_incident_is_not_found_for_a_non_participant(
    clients: Clients, person: People
) -> None:
    incident = restricted_incident(clients, clients.headers("commander", "carol"))
    rita = person("responder", "rita")
    assert rita.get(f"/ui/incidents/{incident}/containment").status_code == 404
    assert _apply(rita, incident, control="suspend").status_code == 404
    assert _actions(clients, incident) == []
    carol = person("commander", "carol")
    assert "Suspend refund-agent" in _section(carol, incident)
