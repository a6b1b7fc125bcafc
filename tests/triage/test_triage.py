"""The triage pack through the API and the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from blastwall.cli import app
from tests.conftest import EXAMPLES, Clients

H = dict[str, str]


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
    answer = client.post("/api/v1/signals", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _incident_from_signals(client: TestClient, headers: H, **fields: Any) -> int:
    first = _signal(client, headers, **fields)
    _signal(client, headers, kind="tool_loop", summary="The agent called issue_refund in a loop")
    candidate = client.get(f"/api/v1/candidates/{first['candidate_id']}", headers=headers).json()
    if candidate["incident_id"]:  # the severity policy opened one at once
        return int(candidate["incident_id"])
    accepted = client.post(
        f"/api/v1/candidates/{first['candidate_id']}/accept",
        json={"title": "Refund agent refunds without approval"},
        headers=headers,
    )
    assert accepted.status_code == 200, accepted.text
    return int(accepted.json()["incident_id"])


def _change(client: TestClient, headers: H, system: str, at: datetime, summary: str) -> None:
    body = {"system_id": system, "kind": "prompt_change", "summary": summary, "at": at.isoformat()}
    assert client.post("/api/v1/changes", json=body, headers=headers).status_code == 201


def test_triage_pack(clients: Clients, admin: H, inventory: list[str]) -> None:
    client = clients.client
    now = datetime.now(UTC)
    _change(client, admin, "refund-agent", now - timedelta(hours=5), "refund limit prompt v7")
    _change(client, admin, "refund-agent", now - timedelta(hours=100), "too old to matter")
    _change(client, admin, "support-chatbot", now - timedelta(hours=2), "another system")
    # a past incident on the same system, with what was done
    past = client.post(
        "/api/v1/incidents",
        json={
            "title": "Refund agent loops on issue_refund",
            "archetype": "agentic_misalignment",
            "severity": "SEV3",
            "systems": ["refund-agent"],
        },
        headers=admin,
    ).json()
    note = {"kind": "action", "text": "revoked issue_refund for an hour"}
    client.post(f"/api/v1/incidents/{past['id']}/timeline", json=note, headers=admin)
    unrelated = {
        "title": "Fraud model drift",
        "archetype": "performance_degradation",
        "severity": "SEV4",
        "systems": ["fraud-scoring"],
    }
    client.post("/api/v1/incidents", json=unrelated, headers=admin)

    incident_id = _incident_from_signals(client, admin)
    viewer = clients.headers("viewer")
    assert client.get(f"/api/v1/incidents/{incident_id}/triage").status_code == 401
    answer = client.get(f"/api/v1/incidents/{incident_id}/triage", headers=viewer)
    assert answer.status_code == 200, answer.text
    pack = answer.json()
    assert pack["signals"] == 2 and pack["first_signal_at"] is not None
    changes = [c["summary"] for c in pack["changes"]]
    # newest first: the inventory apply of the fixture, then the prompt change; not the one
    # older than 72 hours, nor another system's
    assert changes == ["system registered", "refund limit prompt v7"]
    assert {c["system_id"] for c in pack["changes"]} == {"refund-agent"}
    assert {a["kind"] for a in pack["anomalies"]} == {"tool_not_approved", "tool_loop"}
    radius = pack["blast_radius"]
    assert radius["systems"] == ["refund-agent"]
    # refund-agent shares its model vendor with other example systems
    assert radius["exposed"] and "refund-agent" not in radius["exposed"]
    node_ids = {n["id"] for n in radius["nodes"]}
    assert all(e["source"] in node_ids and e["target"] in node_ids for e in radius["edges"])
    similar = pack["similar"]
    assert similar[0]["id"] == past["id"]
    assert similar[0]["shared_systems"] == ["refund-agent"]
    assert "revoked issue_refund" in similar[0]["mitigations"][0]
    assert pack["playbook"]["id"] == "agentic_misalignment"
    revoke = next(s for s in pack["playbook"]["steps"] if s["control"] == "revoke_tool")
    assert revoke["supported"] is True
    assert {r["role"] for r in pack["roles"]} == {"incident_commander", "technical_lead"}
    assert pack["owners"][0]["team"] == "Payments Automation"
    assert "LLM06:2025" in {c["id"] for c in pack["classification"]}

    svg = client.get(f"/api/v1/incidents/{incident_id}/triage/blast-radius.svg", headers=viewer)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "refund-agent" in svg.text


def test_restricted_incidents_stay_out_of_the_pack(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client
    secret = client.post(
        "/api/v1/incidents",
        json={
            "title": "Refund agent data exposure",
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "systems": ["refund-agent"],
            "visibility": "restricted",
        },
        headers=admin,
    ).json()
    incident_id = _incident_from_signals(client, admin)
    responder = clients.headers("responder", "otto")
    pack = client.get(f"/api/v1/incidents/{incident_id}/triage", headers=responder).json()
    assert secret["id"] not in [s["id"] for s in pack["similar"]]
    hidden = client.get(f"/api/v1/incidents/{secret['id']}/triage", headers=responder)
    assert hidden.status_code == 404


def test_triage_command(cli: CliRunner, tmp_path: Path) -> None:
    def run(*args: str) -> str:
        result = cli.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    run("init")
    run("inventory", "apply", str(EXAMPLES))
    opened = run(
        "incident",
        "open",
        "--title",
        "Chatbot leaks card numbers",
        "--archetype",
        "data_exfiltration",
        "--severity",
        "SEV2",
        "--system",
        "support-chatbot",
        "--json",
    )
    number = str(json.loads(opened)["id"])
    shown = run("triage", number)
    assert "Blast radius: support-chatbot" in shown
    assert "Playbook: Data exfiltration" in shown
    target = tmp_path / "radius.svg"
    pack = json.loads(run("triage", number, "--json", "--svg", str(target)))
    assert pack["incident_id"] == int(number)
    assert target.read_text().startswith("<svg")


def test_similar_ranks_by_archetype_systems_and_components_not_by_itself() -> None:
    import bm25s

    from blastwall.triage.similar import SimilarIndex

    texts = {
        1: "chatbot follows injected instructions from a web page",  # the incident at hand
        2: "injected instructions in a retrieved page",  # same kind, another system
        3: "chatbot leaks card numbers",  # another kind, the same system
        4: "nightly batch job slow",  # no words in common; shares the model only
    }
    ids = list(texts)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([texts[i] for i in ids], show_progress=False))
    index = SimilarIndex(
        ids=ids,
        retriever=retriever,
        systems={1: {"chatbot"}, 2: {"docs-bot"}, 3: {"chatbot"}, 4: {"batch"}},
        archetypes={1: "prompt_injection", 2: "prompt_injection", 3: "data_exfiltration"},
        version=None,
    )
    model = ("model", "openai/gpt-4o")
    ranked = index.search(
        texts[1],
        systems={"chatbot"},
        components={"chatbot": {model}, "docs-bot": set(), "batch": {model}},
        exclude=1,
        k=5,
        archetype="prompt_injection",
    )
    order = [incident_id for incident_id, _, _ in ranked]
    assert order[0] == 2 and 1 not in order
    assert ranked[0][1] == 1.0  # the best other incident's text sets the scale
    assert 4 in order  # found through the shared model alone
