"""Status updates through the API: drafts filled from the incident, previews, the checks that
block publishing, approval by a second person, the timeline and the pipeline."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall import pipeline
from blastwall.pipeline import UpdatePublished
from tests.conftest import Clients
from tests.support.incidents import open_refund_incident
from tests.support.otlp_json import document, span, tool

H = dict[str, str]
EMAIL = "jane.doe@example.com"
KEY = "sk-proj-abcdefghijklmnopqrstuvwx1234"
PROMPT = f'"Refund order 1234 and mail the receipt to {EMAIL}, use key {KEY}"'


@pytest.fixture
def published(clients: Clients) -> list[UpdatePublished]:
    """The UpdatePublished events of the test (subscribed after the app's own wiring)."""
    seen: list[UpdatePublished] = []
    pipeline.subscribe(UpdatePublished, lambda _session, event: seen.append(event))
    return seen


def _post(client: TestClient, url: str, headers: H, body: Any = None, code: int = 200) -> Any:
    answer = client.post(url, json=body, headers=headers)
    assert answer.status_code == code, answer.text
    return answer.json()


def _note(client: TestClient, incident: int, headers: H, kind: str, text: str) -> int:
    body = {"kind": kind, "text": text}
    return int(_post(client, f"/api/v1/incidents/{incident}/timeline", headers, body, 201)["id"])


def _draft(client: TestClient, incident: int, headers: H, audience: str) -> dict[str, Any]:
    url = f"/api/v1/incidents/{incident}/updates/drafts"
    return dict(_post(client, url, headers, {"audience": audience}, 201))


def test_a_draft_is_filled_from_the_incident(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    _note(client, incident, admin, "fact", "Refunds were issued without a request")
    _note(client, incident, admin, "hypothesis", "A poisoned policy document steers the agent")
    refuted = _note(client, incident, admin, "hypothesis", "The payment gateway misbehaves")
    verdict = {"verdict": "refuted"}
    _post(client, f"/api/v1/incidents/{incident}/timeline/{refuted}/verdict", admin, verdict, 201)
    task = {"title": "Reconcile the refunds with finance"}
    _post(client, f"/api/v1/incidents/{incident}/tasks", admin, task, 201)
    action = {"control": "revoke_tool", "params": {"tool": "issue-refund"}, "reason": "stop it"}
    _post(client, f"/api/v1/incidents/{incident}/actions", admin, action, 201)
    before = datetime.now(UTC)
    draft = _draft(client, incident, admin, "responders")
    assert draft["state"] == "draft"
    assert draft["what_happened"] == ["Refunds were issued without a request"]
    assert draft["what_we_are_testing"] == ["A poisoned policy document steers the agent"]
    containment, task_line = draft["what_we_are_doing"]
    assert containment.startswith("Containment: revoke_tool(tool=issue-refund) on refund-agent")
    assert "(active, " in containment
    assert task_line == "Task: Reconcile the refunds with finance (open)"
    assert draft["what_we_dont_know"] == []
    assert (draft["phase"], draft["impact"]) == ("identified", "major")  # contained
    promised = datetime.fromisoformat(draft["next_update_at"])
    assert before + timedelta(minutes=59) < promised < before + timedelta(minutes=61)  # SEV2
    url = f"/api/v1/incidents/{incident}/updates/{draft['id']}/preview"
    preview = client.get(url, headers=admin).json()
    assert preview["responders"]["sections"]["what_we_dont_know"] == "None"
    assert "What we don't know yet:\nNone" in preview["responders"]["body"]
    assert preview["problems"] == []


def test_a_draft_counts_what_the_incident_touched(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    start = time.time_ns() - 60 * 10**9
    spans = [
        span(
            tool(
                "issue_refund",
                {"order": f"A-{n}", "amount": 40, "currency": "EUR"},
                **{"gen_ai.conversation.id": f"c{n % 2}", "user.id": f"u{n % 2}"},
            ),
            name="execute_tool issue_refund",
            start_ns=start + n,
        )
        for n in range(3)
    ]
    sent = client.post("/v1/traces", json=document("refund-agent", spans), headers=admin)
    assert sent.status_code == 200, sent.text
    incident = open_refund_incident(client, admin)["id"]
    draft = _draft(client, incident, admin, "executives")
    assert draft["what_happened"] == [
        "Impact so far: 2 conversations, 2 users, 3 tool side effects"
    ]


def test_publishing_to_responders_is_on_the_timeline_and_final(
    clients: Clients, admin: H, inventory: list[str], published: list[UpdatePublished]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    _note(client, incident, admin, "fact", "Refunds were issued without a request")
    draft = _draft(client, incident, admin, "responders")
    url = f"/api/v1/incidents/{incident}/updates/{draft['id']}"
    done = _post(client, f"{url}/publish", admin)
    assert done["state"] == "published"
    assert done["rendered"]["responders"]["sections"]["what_happened"] == (
        "- Refunds were issued without a request"
    )
    late = client.patch(url, json={"title": "changed"}, headers=admin)
    assert late.status_code == 409, late.text
    timeline = client.get(f"/api/v1/incidents/{incident}/timeline", headers=admin).json()
    entry = next(e for e in timeline["items"] if e["kind"] == "update_published")
    assert entry["data"]["update_id"] == draft["id"]
    assert "Refunds were issued without a request" in entry["text"]
    [event] = published
    assert (event.update_id, event.audience, event.public) == (draft["id"], "responders", False)
    assert event.channels == ("responders",)
    assert event.system_ids == ("refund-agent",)
    again = _post(
        client,
        f"/api/v1/incidents/{incident}/updates/no-change",
        admin,
        {"audience": "responders"},
        201,
    )
    assert (again["state"], again["no_change_of"]) == ("published", draft["id"])
    assert again["what_happened"] == ["Refunds were issued without a request"]
    assert len(published) == 2


def test_a_prompt_with_an_email_and_a_key_never_reaches_customers(
    clients: Clients, admin: H, inventory: list[str], published: list[UpdatePublished]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    _note(client, incident, admin, "fact", f"The agent acted on {PROMPT}")
    _note(client, incident, admin, "hypothesis", f"refund-agent trusted {EMAIL} ({KEY})")
    draft = _draft(client, incident, admin, "customers")
    url = f"/api/v1/incidents/{incident}/updates/{draft['id']}"
    preview = client.get(f"{url}/preview", headers=admin).json()
    customers, responders = preview["audience"], preview["responders"]
    assert EMAIL in responders["body"] and KEY in responders["body"]
    for text in (customers["body"], *customers["sections"].values()):
        assert EMAIL not in text and KEY not in text and "refund-agent" not in text
    assert {"prompts", "personal_data", "secrets", "internal_names"} <= set(customers["redacted"])
    blocked = client.post(f"{url}/publish", headers=admin)
    assert blocked.status_code == 422, blocked.text
    fields = {p["field"] for p in blocked.json()["errors"]}
    assert {"what_happened[1]", "what_we_are_testing[1]"} <= fields
    assert published == []

    clean = {
        "what_happened": ["Some refunds were issued that customers did not ask for"],
        "what_we_are_testing": ["Whether a document the assistant reads misled it"],
    }
    assert client.patch(url, json=clean, headers=admin).status_code == 200
    waiting = _post(client, f"{url}/publish", admin)
    assert waiting["state"] == "awaiting_approval"
    assert published == []
    own = client.post(f"{url}/approve", headers=admin)
    assert own.status_code == 403, own.text
    done = _post(client, f"{url}/approve", clients.headers("commander", "carol"))
    assert (done["state"], done["approver"]) == ("published", "carol")
    [event] = published
    assert event.public and event.audience == "customers"
    for text in (event.body, event.title, *event.sections.values()):
        assert EMAIL not in text and KEY not in text


def test_hypotheses_do_not_pass_as_facts_for_external_audiences(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    _note(client, incident, admin, "hypothesis", "A poisoned policy document steers the agent")
    draft = _draft(client, incident, admin, "regulators")
    url = f"/api/v1/incidents/{incident}/updates/{draft['id']}"
    edit = {
        "what_happened": [
            "Customer data may have been exposed",
            "A poisoned policy document steers the agent",
            "Refunds were issued that nobody asked for",
        ],
        "next_update_at": None,
    }
    assert client.patch(url, json=edit, headers=admin).status_code == 200
    blocked = client.post(f"{url}/publish", headers=admin)
    assert blocked.status_code == 422
    problems = {p["field"]: p["message"] for p in blocked.json()["errors"]}
    assert "'may'" in problems["what_happened[1]"]
    assert "open hypothesis" in problems["what_happened[2]"]
    assert "what_happened[3]" not in problems
    assert "next update" in problems["next_update_at"]
    # The same lines are fine for responders: they know what a hypothesis is.
    inside = _draft(client, incident, admin, "responders")
    inside_url = f"/api/v1/incidents/{incident}/updates/{inside['id']}"
    client.patch(inside_url, json={"what_happened": edit["what_happened"]}, headers=admin)
    assert _post(client, f"{inside_url}/publish", admin)["state"] == "published"


def test_a_restricted_incident_never_goes_public(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin, visibility="restricted")["id"]
    refused = client.post(
        f"/api/v1/incidents/{incident}/updates/drafts",
        json={"audience": "customers"},
        headers=admin,
    )
    assert refused.status_code == 409, refused.text
    assert "restricted" in refused.json()["detail"]
    assert _draft(client, incident, admin, "executives")["state"] == "draft"
    stranger = clients.headers("responder", "mallory")
    hidden = client.get(f"/api/v1/incidents/{incident}/updates", headers=stranger)
    assert hidden.status_code == 404

    # Restricted after the draft was made: the draft goes nowhere public either.
    later = open_refund_incident(client, admin)["id"]
    draft = _draft(client, later, admin, "customers")
    restrict = {"visibility": "restricted"}
    assert client.patch(f"/api/v1/incidents/{later}", json=restrict, headers=admin).is_success
    url = f"/api/v1/incidents/{later}/updates/{draft['id']}"
    assert client.post(f"{url}/publish", headers=admin).status_code == 409
    preview = client.get(f"{url}/preview", headers=admin).json()
    assert preview["problems"][0]["field"] == "audience"


def test_who_may_publish_follows_the_audience(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    incident = open_refund_incident(client, admin)["id"]
    responder = clients.headers("responder", "bob")
    draft = _draft(client, incident, responder, "executives")
    url = f"/api/v1/incidents/{incident}/updates/{draft['id']}"
    refused = client.post(f"{url}/publish", headers=responder)
    assert refused.status_code == 403, refused.text
    assert "communications_lead" in refused.json()["detail"]
    role = {"role": "communications_lead", "assignee": "bob"}
    _post(client, f"/api/v1/incidents/{incident}/roles", admin, role)
    assert _post(client, f"{url}/publish", responder)["state"] == "published"
    listed = client.get(f"/api/v1/incidents/{incident}/updates", headers=responder).json()
    assert [u["id"] for u in listed["items"]] == [draft["id"]]
    unknown = client.post(
        f"/api/v1/incidents/{incident}/updates/drafts", json={"audience": "press"}, headers=admin
    )
    assert unknown.status_code == 422
