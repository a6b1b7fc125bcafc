"""Later repeats of a signal (same fingerprint, counted on its group) add their interactions
to the evidence of the incident they feed, up to BLASTWALL_EVIDENCE_REPEAT_CAP per group,
without a timeline entry each; reaching the cap is said once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from blastwall.settings import Settings
from blastwall.wiring import install as install_pipeline
from tests.conftest import Clients
from tests.support.otlp_json import document, span, tool

H = dict[str, str]


@pytest.fixture
def cap() -> None:
    """The pipeline's correlation step with an evidence cap of 3, as `create_app` would
    subscribe it for a server with BLASTWALL_EVIDENCE_REPEAT_CAP=3."""
    install_pipeline(Settings(evidence_repeat_cap=3))


def _refunds(client: TestClient, headers: H, *amounts: int) -> None:
    """One batch of refunds over the limit, each in a trace of its own."""
    spans = [
        span(
            tool("issue_refund", {"amount": amount}, **{"gen_ai.agent.name": "refund-agent"}),
            name="execute_tool issue_refund",
        )
        for amount in amounts
    ]
    answer = client.post("/v1/traces", json=document("refund-agent", spans), headers=headers)
    assert answer.status_code == 200, answer.text


def _get(client: TestClient, headers: H, path: str) -> Any:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_repeats_add_their_interactions_up_to_the_cap(
    clients: Clients, admin: H, inventory: list[str], cap: None
) -> None:
    client = clients.client
    _refunds(client, admin, 900)
    (first,) = _get(client, admin, "/api/v1/signals?detector=tool_policy")["items"]
    candidate = _get(client, admin, f"/api/v1/candidates/{first['candidate_id']}")
    incident = candidate["incident_id"]
    assert incident is not None  # SEV2 on the refund agent: opened at once
    evidence = f"/api/v1/incidents/{incident}/evidence"
    timeline = f"/api/v1/incidents/{incident}/timeline"
    assert sorted(e["kind"] for e in _get(client, admin, evidence)["items"]) == [
        "interaction",
        "trace_tree",
    ]
    entries = len(_get(client, admin, timeline)["items"])

    _refunds(client, admin, 901)  # a repeat: its interaction and its trace join the evidence
    items = _get(client, admin, evidence)["items"]
    assert [e["kind"] for e in items[2:]] == ["interaction", "trace_tree"]
    assert items[2]["note"].startswith("repeat of signal group")
    assert len(_get(client, admin, timeline)["items"]) == entries  # counted, not logged

    _refunds(client, admin, 902, 903, 904)  # one signal of three: room for two more
    items = _get(client, admin, evidence)["items"]
    assert sum(e["kind"] == "interaction" for e in items) == 1 + 3
    (group,) = _get(client, admin, f"/api/v1/candidates/{candidate['id']}/groups")["items"]
    assert group["count"] == 3 and group["evidence_count"] == 3
    capped = [e for e in _get(client, admin, timeline)["items"] if e["data"].get("capped")]
    assert len(capped) == 1 and capped[0]["kind"] == "evidence_collected"
    assert "evidence_repeat_cap" in capped[0]["text"]

    _refunds(client, admin, 905)  # past the cap: counted on the group only
    assert len(_get(client, admin, evidence)["items"]) == len(items)
    (group,) = _get(client, admin, f"/api/v1/candidates/{candidate['id']}/groups")["items"]
    assert group["count"] == 4 and group["evidence_count"] == 3
    again = [e for e in _get(client, admin, timeline)["items"] if e["data"].get("capped")]
    assert again == capped


def test_no_evidence_from_repeats_at_a_cap_of_zero(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    install_pipeline(Settings(evidence_repeat_cap=0))
    client = clients.client
    _refunds(client, admin, 900)
    (first,) = _get(client, admin, "/api/v1/signals?detector=tool_policy")["items"]
    candidate = _get(client, admin, f"/api/v1/candidates/{first['candidate_id']}")
    evidence = f"/api/v1/incidents/{candidate['incident_id']}/evidence"
    before = _get(client, admin, evidence)["items"]
    _refunds(client, admin, 901)
    assert _get(client, admin, evidence)["items"] == before


def test_a_repeat_before_the_incident_is_left_to_its_opening(
    clients: Clients, admin: H, inventory: list[str], cap: None
) -> None:
    """Repeats of a candidate waiting for triage collect nothing; accepting it collects the
    first interactions of each of its signals."""
    client = clients.client
    spans = [
        span(
            tool("delete_ticket", {"ticket": "T-1"}),
            name="execute_tool delete_ticket",
        )
        for _ in range(2)
    ]
    for one in spans:  # a tool support-chatbot does not declare: SEV3, waits for triage
        answer = client.post("/v1/traces", json=document("support-chatbot", [one]), headers=admin)
        assert answer.status_code == 200, answer.text
    found = _get(client, admin, "/api/v1/signals?detector=tool_policy")["items"]
    assert len(found) == 2 and found[0]["group_id"] == found[1]["group_id"]
    candidate = _get(client, admin, f"/api/v1/candidates/{found[0]['candidate_id']}")
    assert candidate["status"] == "pending"
    accepted = client.post(f"/api/v1/candidates/{candidate['id']}/accept", json={}, headers=admin)
    assert accepted.status_code == 200, accepted.text
    evidence = f"/api/v1/incidents/{accepted.json()['incident_id']}/evidence"
    kinds = sorted(e["kind"] for e in _get(client, admin, evidence)["items"])
    assert kinds == ["interaction"] * 2 + ["trace_tree"] * 2
    (group,) = _get(client, admin, f"/api/v1/candidates/{candidate['id']}/groups")["items"]
    assert group["evidence_count"] == 0
