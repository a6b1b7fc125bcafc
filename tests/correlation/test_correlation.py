"""Correlation through the API: signals become groups and incident candidates as they
arrive; severity from the policy; triage (accept, decline, merge); noise control."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clients

H = dict[str, str]
AM = "/api/v1/ingest/alertmanager"
ZERO = "0001-01-01T00:00:00Z"


def signal(client: TestClient, headers: H, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "guardrail",
        "system": "support-chatbot",
        "kind": "jailbreak_attempt",
        "archetype": "prompt_injection",
        "severity": "high",
        "summary": "Instruction override in a customer message",
    }
    body.update(fields)
    answer = client.post("/api/v1/signals", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def candidate(client: TestClient, headers: H, candidate_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/candidates/{candidate_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def candidates(client: TestClient, headers: H, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/candidates", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def timeline(client: TestClient, headers: H, incident_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def alert(status: str, fingerprint: str, system: str, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "UpstreamErrors",
            "severity": "critical",
            "blastwall_system": system,
            **labels,
        },
        "annotations": {"summary": f"Upstream model API failing for {system}"},
        "startsAt": "2026-11-20T10:00:00Z",
        "endsAt": ZERO if status == "firing" else "2026-11-20T10:05:00Z",
        "fingerprint": fingerprint,
    }


def ingest(client: TestClient, headers: H, *alerts: dict[str, Any]) -> list[int]:
    body = {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "blastwall",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": list(alerts),
    }
    answer = client.post(AM, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["signals"])


# -- deduplication and grouping ----------------------------------------------------------


def test_repeats_count_on_one_group_and_one_candidate(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    first = signal(client, admin, conversation_id="c-1")
    second = signal(client, admin, conversation_id="c-2")
    assert first["group_id"] is not None and first["group_id"] == second["group_id"]
    assert first["candidate_id"] is not None and first["candidate_id"] == second["candidate_id"]
    assert first["held_by"] is None
    other_kind = signal(client, admin, kind="injection_in_retrieved_document", source="detector")
    assert other_kind["group_id"] != first["group_id"]
    assert other_kind["candidate_id"] == first["candidate_id"]  # same system and archetype
    elsewhere = signal(client, admin, system="code-assistant")
    assert elsewhere["candidate_id"] != first["candidate_id"]
    c = candidate(client, admin, first["candidate_id"])
    assert c["signal_count"] == 3 and c["group_count"] == 2
    assert c["systems"] == ["support-chatbot"] and c["basis"] == "system"
    assert c["affected"]["conversations"] == 2
    groups = client.get(f"/api/v1/candidates/{c['id']}/groups", headers=admin).json()["items"]
    assert sorted(g["count"] for g in groups) == [1, 2]


def test_info_signals_are_grouped_but_start_no_candidate(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    weak = signal(client, admin, severity="info", summary="Evaluation note")
    assert weak["group_id"] is not None and weak["candidate_id"] is None
    unsure = signal(client, admin, kind="maybe", source="detector", severity="high")
    assert unsure["candidate_id"] is not None  # no confidence given: it counts
    again = signal(client, admin, severity="info", summary="Evaluation note")
    assert again["group_id"] == weak["group_id"]
    assert again["candidate_id"] == unsure["candidate_id"]  # weak signals join a live one


def test_shared_vendor_makes_one_candidate_across_systems(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    ids = ingest(
        client,
        admin,
        alert("firing", "aa01", "support-chatbot", vendor="openai"),
        alert("firing", "aa02", "refund-agent", vendor="openai"),
        alert("firing", "aa03", "code-assistant", vendor="openai"),
    )
    rows = [client.get(f"/api/v1/signals/{i}", headers=admin).json() for i in ids]
    assert len({r["candidate_id"] for r in rows}) == 1
    c = candidate(client, admin, rows[0]["candidate_id"])
    assert c["basis"] == "component" and c["component"] == "vendor:openai"
    assert c["systems"] == ["code-assistant", "refund-agent", "support-chatbot"]
    scale = next(f for f in c["explanation"] if f["factor"] == "scale")
    assert scale["points"] == 3 and "3 system(s)" in scale["why"]
    # a vendor the systems do not share, or do not declare, groups per system
    other = ingest(client, admin, alert("firing", "bb01", "fraud-scoring", vendor="openai"))
    row = client.get(f"/api/v1/signals/{other[0]}", headers=admin).json()
    assert row["candidate_id"] != c["id"]


def test_flapping_alert_stays_one_group(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    (first,) = ingest(client, admin, alert("firing", "cc01", "fraud-scoring"))
    ingest(client, admin, alert("resolved", "cc01", "fraud-scoring"))
    refire = alert("firing", "cc01", "fraud-scoring")
    refire["startsAt"] = "2026-11-20T10:07:00Z"
    (second,) = ingest(client, admin, refire)
    assert second != first
    a, b = (client.get(f"/api/v1/signals/{i}", headers=admin).json() for i in (first, second))
    assert a["group_id"] == b["group_id"]  # back within the quiet period
    groups = client.get(f"/api/v1/candidates/{a['candidate_id']}/groups", headers=admin)
    (group,) = groups.json()["items"]
    assert group["count"] == 2 and group["resolved_at"] is None


# -- reports -----------------------------------------------------------------------------


def test_report_attaches_to_the_candidate_of_its_conversation(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    s = signal(client, admin, conversation_id="conv-77")
    viewer = clients.headers("viewer", "customer-care")
    answer = client.post(
        "/api/v1/reports",
        json={"what": "The bot told me another customer's address", "conversation_id": "conv-77"},
        headers=viewer,
    )
    assert answer.status_code == 201, answer.text
    report = client.get(f"/api/v1/signals/{answer.json()['signal_id']}", headers=admin).json()
    assert report["candidate_id"] == s["candidate_id"]
    by_system = client.post(
        "/api/v1/reports", json={"what": "Odd answer", "system": "support-chatbot"}, headers=viewer
    ).json()
    row = client.get(f"/api/v1/signals/{by_system['signal_id']}", headers=admin).json()
    assert row["candidate_id"] == s["candidate_id"]
    alone = client.post(
        "/api/v1/reports", json={"what": "Wrong code", "system": "code-assistant"}, headers=viewer
    ).json()
    row = client.get(f"/api/v1/signals/{alone['signal_id']}", headers=admin).json()
    assert row["candidate_id"] not in (None, s["candidate_id"])
    assert candidate(client, admin, row["candidate_id"])["basis"] == "report"


# -- severity and incidents --------------------------------------------------------------


def test_at_the_threshold_an_incident_opens_at_once_and_absorbs_later_signals(
    clients: Clients, admin: H, inventory: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    client = clients.client
    s = signal(
        client,
        admin,
        system="refund-agent",
        archetype="agentic_misalignment",
        kind="refund_loop",
        summary="Agent issues the same refund in a loop",
        attributes={"outcome": "executed"},  # evidence of impact: the refunds went through
    )
    c = candidate(client, admin, s["candidate_id"])
    assert c["status"] == "opened" and c["severity"] in ("SEV1", "SEV2")
    assert c["incident_id"] is not None and c["decided_by"] == "blastwall:correlation"
    assert (
        "reversibility +2 (tools that cannot be undone: email:send, refunds:create)"
        in (c["severity_explanation"])
    )
    factors = {f["factor"] for f in c["explanation"]}
    assert factors == {
        "signal_severity",
        "affected",
        "data_sensitivity",
        "reversibility",
        "decision_significance",
        "scale",
        "regulatory",
        "ongoing",
        "volume",
        "harm",
        "outcome",
        "confidence",
        "persistence",
        "leaked",
        "impact",
    }
    incident = client.get(f"/api/v1/incidents/{c['incident_id']}", headers=admin).json()
    assert incident["severity"] == c["severity"] and incident["systems"] == ["refund-agent"]
    assert incident["severity_reason"] == c["severity_explanation"]
    entries = timeline(client, admin, c["incident_id"])
    assert [e["kind"] for e in entries] == ["created", "opened_by_policy"]
    assert f"incident {c['incident_id']} opened at once from candidate {c['id']}" in caplog.text
    assert "at or above the policy's threshold SEV2" in entries[1]["text"]
    later = signal(
        client,
        admin,
        system="refund-agent",
        archetype="agentic_misalignment",
        kind="spend_spike",
        summary="Refund spend 10x",
    )
    assert later["candidate_id"] == c["id"]
    entries = timeline(client, admin, c["incident_id"])
    assert entries[-1]["kind"] == "signal_absorbed" and str(later["id"]) in entries[-1]["text"]
    repeat = signal(
        client,
        admin,
        system="refund-agent",
        archetype="agentic_misalignment",
        kind="spend_spike",
        summary="Refund spend 10x",
    )
    assert repeat["group_id"] == later["group_id"]
    assert len(timeline(client, admin, c["incident_id"])) == len(entries)  # counted, not logged


def test_severity_escalates_as_conversations_grow(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    first = signal(client, admin, conversation_id="x-0")
    c = candidate(client, admin, first["candidate_id"])
    assert c["status"] == "pending" and c["severity"] == "SEV4"  # one attempt: no impact yet
    for n in range(1, 10):
        signal(client, admin, conversation_id=f"x-{n}")
    c = candidate(client, admin, first["candidate_id"])
    assert c["affected"]["conversations"] == 10
    assert c["status"] == "opened" and c["severity"] == "SEV2"
    assert "affected +2 (10 conversations or users)" in c["severity_explanation"]


def test_a_senders_own_count_of_users_counts(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    s = signal(client, admin, attributes={"conversations": 3, "users": 1200})
    c = candidate(client, admin, s["candidate_id"])
    assert c["affected"]["reported"] == 1200
    assert "1200 conversations or users" in c["severity_explanation"]


def test_accept_keeps_signals_and_later_ones_follow(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    s = signal(client, admin, system="code-assistant", severity="warning")
    c = candidate(client, admin, s["candidate_id"])
    assert c["status"] == "pending" and c["severity"] == "SEV4" and c["incident_id"] is None
    responder = clients.headers("responder", "rita")
    viewer = clients.headers("viewer", "vic")
    refused = client.post(f"/api/v1/candidates/{c['id']}/accept", json={}, headers=viewer)
    assert refused.status_code == 403
    done = client.post(f"/api/v1/candidates/{c['id']}/accept", json={}, headers=responder)
    assert done.status_code == 200, done.text
    accepted = done.json()
    assert accepted["status"] == "accepted" and accepted["decided_by"] == "rita"
    incident_id = accepted["incident_id"]
    assert [e["kind"] for e in timeline(client, admin, incident_id)] == [
        "created",
        "candidate_accepted",
    ]
    again = client.post(f"/api/v1/candidates/{c['id']}/accept", json={}, headers=responder)
    assert again.status_code == 409 and "accepted" in again.json()["detail"]
    follow = signal(client, admin, system="code-assistant", severity="warning", kind="other")
    assert follow["candidate_id"] == c["id"]
    assert timeline(client, admin, incident_id)[-1]["kind"] == "signal_absorbed"
    audit = client.get("/api/v1/audit", params={"object": f"candidate:{c['id']}"}, headers=admin)
    assert [a["actor"] for a in audit.json()["items"]][:1] == ["rita"]


def test_accept_needs_an_archetype_when_the_candidate_has_none(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    s = signal(client, admin, archetype=None, kind="odd_output", system="code-assistant")
    url = f"/api/v1/candidates/{s['candidate_id']}/accept"
    missing = client.post(url, json={}, headers=admin)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body.archetype"
    ok = client.post(url, json={"archetype": "misinformation_cascade"}, headers=admin)
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"


def test_decline_records_the_reason_and_snoozes_the_signals(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    s = signal(client, admin, system="code-assistant", severity="warning", kind="lint_bot")
    cid = s["candidate_id"]
    empty = client.post(f"/api/v1/candidates/{cid}/decline", json={"reason": " "}, headers=admin)
    assert empty.status_code == 422
    answer = client.post(
        f"/api/v1/candidates/{cid}/decline", json={"reason": "lint bot test run"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    c = answer.json()
    assert c["status"] == "declined" and c["decision_reason"] == "lint bot test run"
    rules = client.get("/api/v1/noise-rules", params={"active": "true"}, headers=admin).json()
    (rule,) = rules["items"]
    assert rule["kind"] == "snooze" and rule["candidate_id"] == cid
    assert "lint bot test run" in rule["reason"]
    again = signal(client, admin, system="code-assistant", severity="warning", kind="lint_bot")
    assert again["held_by"] == f"snooze:{rule['id']}" and again["candidate_id"] is None
    twice = client.post(f"/api/v1/candidates/{cid}/decline", json={"reason": "x"}, headers=admin)
    assert twice.status_code == 409
    # taken up after all: accepting ends the snooze, and the signals are the incident's
    accepted = client.post(f"/api/v1/candidates/{cid}/accept", json={}, headers=admin).json()
    assert accepted["status"] == "accepted"
    ended = client.get("/api/v1/noise-rules", headers=admin).json()["items"][0]
    assert ended["active"] is False and ended["ended_by"] == "alice"
    third = signal(client, admin, system="code-assistant", severity="warning", kind="lint_bot")
    assert third["held_by"] is None and third["candidate_id"] == cid
    listed = client.get(f"/api/v1/candidates/{cid}/signals", headers=admin).json()["items"]
    assert [x["id"] for x in listed] == [third["id"], s["id"]]  # the snoozed one never joined
    by_incident = candidates(client, admin, incident_id=accepted["incident_id"])
    assert [c["id"] for c in by_incident] == [cid]


def test_merge_into_an_incident_and_restricted_stays_hidden(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    made = client.post(
        "/api/v1/incidents",
        json={
            "title": "Leak under investigation",
            "archetype": "data_exfiltration",
            "severity": "SEV2",
            "visibility": "restricted",
        },
        headers=admin,
    )
    incident_id = made.json()["id"]
    s = signal(client, admin, system="code-assistant", severity="warning")
    cid = s["candidate_id"]
    outsider = clients.headers("responder", "outsider")
    hidden = client.post(
        f"/api/v1/candidates/{cid}/merge", json={"incident_id": incident_id}, headers=outsider
    )
    assert hidden.status_code == 404  # the restricted incident is not disclosed
    merged = client.post(
        f"/api/v1/candidates/{cid}/merge", json={"incident_id": incident_id}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["status"] == "merged" and merged.json()["incident_id"] == incident_id
    entries = timeline(client, admin, incident_id)
    assert entries[-1]["kind"] == "candidate_merged"
    incident = client.get(f"/api/v1/incidents/{incident_id}", headers=admin).json()
    assert incident["systems"] == ["code-assistant"]
    viewer = clients.headers("viewer", "vera")
    assert cid not in [c["id"] for c in candidates(client, viewer)]
    assert client.get(f"/api/v1/candidates/{cid}", headers=viewer).status_code == 404
    assert cid in [c["id"] for c in candidates(client, admin)]


# -- noise control -----------------------------------------------------------------------


def test_maintenance_window_holds_back_a_systems_signals(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    body = {
        "system": "fraud-scoring",
        "starts_at": "2020-01-01T00:00:00Z",
        "ends_at": "2999-01-01T00:00:00Z",
        "reason": "model retraining deploy",
    }
    viewer = clients.headers("viewer", "vi")
    assert (
        client.post("/api/v1/noise-rules/maintenance", json=body, headers=viewer).status_code == 403
    )
    made = client.post("/api/v1/noise-rules/maintenance", json=body, headers=admin)
    assert made.status_code == 201, made.text
    rule = made.json()
    assert rule["active"] is True and rule["match"] == {"system": "fraud-scoring"}
    held = signal(client, admin, system="fraud-scoring", severity="critical")
    assert held["held_by"] == f"maintenance:{rule['id']}" and held["candidate_id"] is None
    listed = client.get(f"/api/v1/noise-rules/{rule['id']}/signals", headers=viewer).json()
    assert [s["id"] for s in listed["items"]] == [held["id"]]
    assert client.get("/api/v1/noise-rules/999/signals", headers=admin).status_code == 404
    unknown = client.post(
        "/api/v1/noise-rules/maintenance", json={**body, "system": "nope"}, headers=admin
    )
    assert unknown.status_code == 422 and "unknown system 'nope'" in unknown.text
    ended = client.post(f"/api/v1/noise-rules/{rule['id']}/end", headers=admin)
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert client.post(f"/api/v1/noise-rules/{rule['id']}/end", headers=admin).status_code == 409
    after = signal(client, admin, system="fraud-scoring", severity="critical")
    assert after["held_by"] is None and after["candidate_id"] is not None
    audit = client.get(
        "/api/v1/audit", params={"object": f"noise-rule:{rule['id']}"}, headers=admin
    ).json()["items"]
    assert len(audit) == 2


def test_snooze_needs_a_match_and_a_future_expiry(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    url = "/api/v1/noise-rules/snoozes"
    empty = client.post(
        url, json={"match": {}, "reason": "x", "until": "2999-01-01T00:00:00Z"}, headers=admin
    )
    assert empty.status_code == 422 and "at least one" in empty.text
    past = client.post(
        url,
        json={"match": {"kind": "k"}, "reason": "x", "until": "2001-01-01T00:00:00Z"},
        headers=admin,
    )
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "body.until"
    ok = client.post(
        url,
        json={
            "match": {"source": "guardrail", "system": "support-chatbot"},
            "reason": "guardrail rollout",
            "until": "2999-01-01T00:00:00Z",
        },
        headers=admin,
    )
    assert ok.status_code == 201
    held = signal(client, admin)
    assert held["held_by"] == f"snooze:{ok.json()['id']}"
    other = signal(client, admin, source="dlp")
    assert other["held_by"] is None


def test_vendor_outage_incident_inhibits_latency_signals(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    (outage,) = ingest(
        client,
        admin,
        alert(
            "firing",
            "dd01",
            "support-chatbot",
            vendor="openai",
            blastwall_archetype="vendor_failure",
        ),
    )
    row = client.get(f"/api/v1/signals/{outage}", headers=admin).json()
    c = candidate(client, admin, row["candidate_id"])
    assert c["status"] == "opened" and c["archetype"] == "vendor_failure"
    slow = signal(
        client,
        admin,
        system="refund-agent",
        source="detector",
        kind="latency_p90",
        archetype="performance_degradation",
        severity="warning",
    )
    assert slow["held_by"] == "inhibition:vendor-outage-explains-latency"
    assert slow["candidate_id"] == c["id"]
    assert "refund-agent" in candidate(client, admin, c["id"])["systems"]
    # fraud-scoring shares no vendor with the outage: not explained by it
    own = signal(
        client,
        admin,
        system="fraud-scoring",
        source="detector",
        kind="latency_p90",
        archetype="performance_degradation",
        severity="warning",
    )
    assert own["held_by"] is None and own["candidate_id"] != c["id"], (own, c)
    inhibitions = client.get("/api/v1/inhibitions", headers=admin).json()
    assert inhibitions["next"] is None
    assert inhibitions["items"][0]["name"] == "vendor-outage-explains-latency"
    held = client.get(
        "/api/v1/signals",
        params={"held_by": "inhibition:vendor-outage-explains-latency"},
        headers=admin,
    ).json()["items"]
    assert [x["id"] for x in held] == [slow["id"]]


# -- listing -----------------------------------------------------------------------------


def test_candidates_list_pages_and_filters(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    for n in range(5):
        signal(client, admin, system=f"shadow-{n}", severity="warning")
    first = client.get("/api/v1/candidates", params={"limit": 2}, headers=admin).json()
    assert len(first["items"]) == 2 and first["next"]
    seen = [c["id"] for c in first["items"]]
    cursor = first["next"]
    while cursor:
        page = client.get(
            "/api/v1/candidates", params={"limit": 2, "cursor": cursor}, headers=admin
        ).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
    assert len(seen) == 5 and seen == sorted(seen, reverse=True)
    assert [c["systems"] for c in candidates(client, admin, system="shadow-3")] == [["shadow-3"]]
    assert candidates(client, admin, status="opened") == []
    bad = client.get("/api/v1/candidates", params={"cursor": "zz"}, headers=admin)
    assert bad.status_code == 422
    policy = client.get("/api/v1/correlation-policy", headers=admin).json()
    assert policy["severity"]["open_incident_at"] == "SEV2"
