"""Incidents through the API: lifecycle, roles, timeline, tasks, visibility, audit."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Clients

H = dict[str, str]


def _open(client: TestClient, headers: H, **fields: Any) -> dict[str, Any]:
    body = {
        "title": "Chatbot repeats injected instructions",
        "archetype": "prompt_injection",
        "severity": "SEV2",
        "severity_reason": "customer-facing",
        "systems": ["support-chatbot"],
    }
    body.update(fields)
    answer = client.post("/api/v1/incidents", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_create_get_patch(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    incident = _open(client, admin)
    assert incident["status"] == "triage"
    assert incident["systems"] == ["support-chatbot"]
    assert incident["milestones"]["detected"] is not None
    assert incident["milestones"]["acknowledged"] is None
    url = f"/api/v1/incidents/{incident['id']}"
    assert client.get(url, headers=admin).json()["title"] == incident["title"]
    patched = client.patch(
        url,
        json={
            "severity": "SEV1",
            "severity_reason": "refunds issued",
            "systems": ["support-chatbot", "refund-agent"],
        },
        headers=admin,
    ).json()
    assert patched["severity"] == "SEV1"
    assert patched["systems"] == ["refund-agent", "support-chatbot"]
    no_reason = client.patch(url, json={"severity": "SEV4"}, headers=admin)
    assert no_reason.status_code == 422
    timeline = client.get(f"{url}/timeline", headers=admin).json()["items"]
    changed = [e for e in timeline if e["kind"] == "field_changed"]
    assert {"field": "severity", "before": "SEV2", "after": "SEV1"} in [e["data"] for e in changed]
    assert all(e["actor"] == "alice" for e in timeline)


def test_unknown_system_is_named(clients: Clients, admin: H, inventory: list[str]) -> None:
    answer = clients.client.post(
        "/api/v1/incidents",
        json={
            "title": "x",
            "archetype": "vendor_failure",
            "severity": "SEV3",
            "systems": ["support-chatbot", "ghost"],
        },
        headers=admin,
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["errors"] == [
        {"field": "body.systems", "message": "unknown system 'ghost'; see GET /api/v1/systems"}
    ]


def test_lifecycle_stamps_milestones(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    url = f"/api/v1/incidents/{_open(client, admin)['id']}"
    for status in ("investigating", "contained", "recovering", "resolved", "closed"):
        answer = client.post(f"{url}/status", json={"status": status}, headers=admin)
        assert answer.status_code == 200, answer.text
    milestones = client.get(url, headers=admin).json()["milestones"]
    assert all(milestones[m] for m in ("acknowledged", "contained", "resolved", "closed"))
    assert milestones["acknowledged"] <= milestones["contained"] <= milestones["resolved"]
    refused = client.post(f"{url}/status", json={"status": "investigating"}, headers=admin)
    assert refused.status_code == 409
    assert refused.json()["allowed"] == []


def test_invalid_transition_names_allowed(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    url = f"/api/v1/incidents/{_open(client, admin)['id']}"
    answer = client.post(f"{url}/status", json={"status": "recovering"}, headers=admin)
    assert answer.status_code == 409
    body = answer.json()
    assert body["allowed"] == ["investigating", "contained", "resolved", "declined", "merged"]
    assert "investigating" in body["detail"]


def test_merge(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    keep = _open(client, admin)["id"]
    dup = _open(client, admin)["id"]
    need_target = client.post(
        f"/api/v1/incidents/{dup}/status", json={"status": "merged"}, headers=admin
    )
    assert need_target.status_code == 422
    merged = client.post(
        f"/api/v1/incidents/{dup}/status",
        json={"status": "merged", "merged_into": keep},
        headers=admin,
    ).json()
    assert merged["status"] == "merged" and merged["merged_into"] == keep
    kinds = [
        e["kind"]
        for e in client.get(f"/api/v1/incidents/{keep}/timeline", headers=admin).json()["items"]
    ]
    assert "merged_in" in kinds


def test_roles_assign_and_reassign(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    commander = clients.headers("commander", "cora")
    url = f"/api/v1/incidents/{_open(client, commander)['id']}"
    for person in ("dan", "erin", "fay"):  # assignees are principals: they hold tokens
        clients.headers("responder", person)
    for person in ("dan", "erin"):
        answer = client.post(
            f"{url}/roles",
            json={"role": "incident_commander", "assignee": person},
            headers=commander,
        )
        assert answer.status_code == 200
    client.post(f"{url}/roles", json={"role": "scribe", "assignee": "fay"}, headers=commander)
    roles = {
        r["role"]: r["assignee"]
        for r in client.get(f"{url}/roles", headers=commander).json()["items"]
    }
    assert roles == {"incident_commander": "erin", "scribe": "fay"}
    entries = client.get(f"{url}/timeline?kind=role_assigned", headers=commander).json()["items"]
    assert entries[1]["data"] == {"role": "incident_commander", "before": "dan", "after": "erin"}
    bad = client.post(f"{url}/roles", json={"role": "janitor", "assignee": "x"}, headers=commander)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.role"


def test_timeline_hypothesis_verdict(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    url = f"/api/v1/incidents/{_open(client, admin)['id']}"
    for kind, text in (
        ("fact", "Injected text came from ticket 4411"),
        ("hypothesis", "The retriever indexes unreviewed tickets"),
        ("decision", "Pin prompt v13"),
    ):
        assert (
            client.post(
                f"{url}/timeline", json={"kind": kind, "text": text}, headers=admin
            ).status_code
            == 201
        )
    items = client.get(f"{url}/timeline", headers=admin).json()["items"]
    hypothesis = next(e for e in items if e["kind"] == "hypothesis")
    assert hypothesis["hypothesis_state"] == "open"
    verdict = client.post(
        f"{url}/timeline/{hypothesis['id']}/verdict",
        json={"verdict": "confirmed", "text": "index config shows it"},
        headers=admin,
    )
    assert verdict.status_code == 201 and verdict.json()["ref_id"] == hypothesis["id"]
    items = client.get(f"{url}/timeline", headers=admin).json()["items"]
    again = next(e for e in items if e["id"] == hypothesis["id"])
    assert again["hypothesis_state"] == "confirmed"
    assert again["text"] == hypothesis["text"] and again["at"] == hypothesis["at"]
    fact = next(e for e in items if e["kind"] == "fact")
    assert (
        client.post(
            f"{url}/timeline/{fact['id']}/verdict", json={"verdict": "refuted"}, headers=admin
        ).status_code
        == 409
    )
    system_kind = client.post(
        f"{url}/timeline", json={"kind": "status_changed", "text": "x"}, headers=admin
    )
    assert system_kind.status_code == 422


def test_timeline_pages(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    url = f"/api/v1/incidents/{_open(client, admin)['id']}"
    for n in range(7):
        client.post(f"{url}/timeline", json={"kind": "note", "text": f"n{n}"}, headers=admin)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"{url}/timeline", params=params, headers=admin).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert len(seen) == 8 and seen == sorted(seen)


def test_tasks(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    url = f"/api/v1/incidents/{_open(client, admin)['id']}"
    task = client.post(
        f"{url}/tasks",
        json={"title": "Rotate the leaked key", "owner": "gus", "due": "2026-12-01"},
        headers=admin,
    ).json()
    item = client.post(
        f"{url}/tasks",
        json={"title": "Add eval for this injection", "kind": "action_item"},
        headers=admin,
    ).json()
    assert task["state"] == "open" and item["kind"] == "action_item"
    done = client.patch(f"{url}/tasks/{task['id']}", json={"state": "done"}, headers=admin)
    assert done.json()["state"] == "done"
    assert [
        t["id"] for t in client.get(f"{url}/tasks?state=open", headers=admin).json()["items"]
    ] == [item["id"]]
    assert (
        client.patch(f"{url}/tasks/999999", json={"state": "done"}, headers=admin).status_code
        == 404
    )
    kinds = [e["kind"] for e in client.get(f"{url}/timeline", headers=admin).json()["items"]]
    assert kinds.count("task_created") == 2 and "task_updated" in kinds


def test_restricted_incidents_never_leak(clients: Clients, inventory: list[str]) -> None:
    client = clients.client
    owner = clients.headers("responder", "rita")
    other = clients.headers("responder", "sam")
    viewer = clients.headers("viewer", "vic")
    legal = clients.headers("legal", "lou")
    admin = clients.headers("admin", "ada")
    commander = clients.headers("commander", "cid")
    secret = _open(client, owner, title="Insider data pull", visibility="restricted")
    public = _open(client, owner, title="Latency spike")

    def listed(headers: H) -> set[int]:
        ids: set[int] = set()
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/incidents", params=params, headers=headers).json()
            ids |= {i["id"] for i in page["items"]}
            cursor = page["next"]
            if not cursor:
                return ids

    for outsider in (other, viewer, commander):
        assert listed(outsider) == {public["id"]}
        for suffix in ("", "/timeline", "/roles", "/tasks"):
            answer = client.get(f"/api/v1/incidents/{secret['id']}{suffix}", headers=outsider)
            assert answer.status_code == 404
        wrote = client.post(
            f"/api/v1/incidents/{secret['id']}/timeline",
            json={"kind": "note", "text": "x"},
            headers=outsider,
        )
        assert wrote.status_code == (403 if outsider is viewer else 404)
    for insider in (owner, legal, admin):
        assert listed(insider) == {public["id"], secret["id"]}
    # a participant added by a commander-level role sees it from then on
    client.patch(
        f"/api/v1/incidents/{secret['id']}", json={"add_participants": ["sam"]}, headers=admin
    )
    assert secret["id"] in listed(other)


def test_audit_log_records_mutations(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    viewer = clients.headers("viewer", "vic")
    incident = _open(client, admin)
    client.post(
        f"/api/v1/incidents/{incident['id']}/status",
        json={"status": "investigating"},
        headers=admin,
    )
    client.post("/api/v1/incidents", json={"title": "x"}, headers=viewer)
    entries = client.get("/api/v1/audit", headers=admin).json()["items"]
    rows = [(e["actor"], e["method"], e["route"], e["object"], e["status_code"]) for e in entries]
    assert ("alice", "POST", "/api/v1/incidents", f"incident:{incident['id']}", 201) in rows
    assert (
        "alice",
        "POST",
        "/api/v1/incidents/{incident_id}/status",
        f"incident:{incident['id']}",
        200,
    ) in rows
    assert ("vic", "POST", "/api/v1/incidents", None, 422) in rows
    assert client.get("/api/v1/audit", headers=viewer).status_code == 403


def test_list_filters_and_pagination(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    made = [_open(client, admin, severity=f"SEV{1 + n % 4}")["id"] for n in range(9)]
    page = client.get("/api/v1/incidents?limit=4", headers=admin).json()
    assert [i["id"] for i in page["items"]] == sorted(made, reverse=True)[:4]
    sev1 = client.get("/api/v1/incidents?severity=SEV1", headers=admin).json()["items"]
    assert {i["severity"] for i in sev1} == {"SEV1"} and len(sev1) == 3
    by_system = client.get("/api/v1/incidents?system=refund-agent", headers=admin).json()
    assert by_system["items"] == []
    assert client.get("/api/v1/incidents?limit=0", headers=admin).status_code == 422
    assert client.get("/api/v1/incidents/0", headers=admin).status_code == 422
    assert client.get(f"/api/v1/incidents/{2**70}", headers=admin).status_code == 422
