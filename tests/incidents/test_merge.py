"""Merging an incident into another (issue 17): its signals, candidates, evidence (each move
in the ledger), legal hold, systems and participants go to the survivor; containment stays
where it was taken and the survivor's timeline names it; both timelines say what moved;
the survivor's triage figures are computed again; its bundle carries the moved items."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.correlation import flows as correlation
from blastwall.correlation import triage
from blastwall.correlation.models import Candidate
from blastwall.correlation.policy import load_policy
from blastwall.correlation.schemas import Accept
from blastwall.db import Database
from blastwall.evidence import custody
from blastwall.evidence.bundle import verify_bundle
from blastwall.signals.models import Signal
from tests.conftest import EXAMPLES, Clients
from tests.support.evidence import add, evidence_dir, interaction

__all__ = ["evidence_dir"]  # a fixture

H = dict[str, str]
API = "/api/v1"
ALICE = Principal(name="alice", role=Role.admin)


def _emit(session: Session, system: str, interaction_ids: list[int]) -> Signal:
    at = datetime.now(UTC) - timedelta(minutes=10)
    row = Signal(
        source="guardrail",
        kind="jailbreak_attempt",
        system_id=system,
        archetype="prompt_injection",
        severity="warning",
        summary=f"Instruction override on {system}",
        attributes={},
        status="firing",
        created_by="test",
        created_at=at,
        updated_at=at,
        interaction_ids=interaction_ids,
    )
    session.add(row)
    correlation.correlate(session, [row], now=at, policy=load_policy())
    session.commit()
    return row


def _incident_of(session: Session, signal: Signal) -> int:
    candidate = session.get(Candidate, signal.candidate_id)
    assert candidate is not None
    if candidate.incident_id is None:
        triage.accept(session, candidate_id=candidate.id, data=Accept(), actor=ALICE)
    assert candidate.incident_id is not None
    return candidate.incident_id


def _timeline(clients: Clients, incident: int, headers: H) -> list[dict[str, Any]]:
    answer = clients.client.get(f"{API}/incidents/{incident}/timeline?limit=500", headers=headers)
    return list(answer.json()["items"])


def _items(clients: Clients, incident: int, headers: H) -> list[dict[str, Any]]:
    answer = clients.client.get(f"{API}/incidents/{incident}/evidence?limit=500", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_merging_moves_what_is_linked_to_the_survivor(
    clients: Clients,
    admin: H,
    inventory: list[str],
    db: Database,
    evidence_dir: Path,
    tmp_path: Path,
) -> None:
    client = clients.client
    with db.transaction() as session:
        ids = add(
            session,
            [
                interaction(1, system="support-chatbot", conversation="c1", user="u1"),
                interaction(2, system="refund-agent", conversation="c2", user="u2"),
                interaction(3, system="refund-agent", conversation="c3", user="u3"),
            ],
        )
        keep = _incident_of(session, _emit(session, "support-chatbot", [ids[0]]))
        dup_signals = [_emit(session, "refund-agent", [i]) for i in ids[1:]]
        dup = _incident_of(session, dup_signals[0])
        assert keep != dup
        moving = [
            c.id for c in session.scalars(select(Candidate).where(Candidate.incident_id == dup))
        ]
        custody.place_hold(session, incident_id=dup, reason="litigation", actor=ALICE)
    clients.headers("responder", "bob")  # a participant is a principal: bob holds a token
    people = {"add_participants": ["bob"]}
    assert client.patch(f"{API}/incidents/{dup}", json=people, headers=admin).status_code == 200
    action = client.post(
        f"{API}/incidents/{dup}/actions",
        json={"control": "revoke_tool", "params": {"tool": "issue-refund"}, "reason": "stop"},
        headers=admin,
    ).json()
    dup_items = [i["id"] for i in _items(clients, dup, admin)]
    keep_items = [i["id"] for i in _items(clients, keep, admin)]
    assert dup_items and keep_items
    before = client.get(f"{API}/incidents/{keep}/triage", headers=admin).json()
    assert before["signals"] == 1

    merged = client.post(
        f"{API}/incidents/{dup}/status",
        json={"status": "merged", "merged_into": keep, "reason": "the same campaign"},
        headers=admin,
    )
    assert merged.status_code == 200, merged.text
    assert (merged.json()["status"], merged.json()["merged_into"]) == ("merged", keep)

    # Signals and candidates: the survivor's, and so its triage pack's.
    with db.transaction() as session:
        owners = {
            c.id: c.incident_id
            for c in session.scalars(select(Candidate).where(Candidate.id.in_(moving)))
        }
        assert set(owners.values()) == {keep}
        later = _emit(session, "refund-agent", [ids[2]])  # a later signal follows them
        follows = session.get(Candidate, later.candidate_id)
        assert follows is not None and follows.incident_id == keep
    after = client.get(f"{API}/incidents/{keep}/triage", headers=admin).json()
    assert after["signals"] == 4 and "refund-agent" in after["blast_radius"]["systems"]

    # Systems and participants.
    survivor = client.get(f"{API}/incidents/{keep}", headers=admin).json()
    assert survivor["systems"] == ["refund-agent", "support-chatbot"]
    bob = clients.headers("responder", "bob")
    assert client.get(f"{API}/incidents/{keep}", headers=bob).status_code == 200

    # Evidence: moved, held, in the ledger, verified, in the survivor's bundle.
    assert [i["id"] for i in _items(clients, keep, admin)] == sorted(keep_items + dup_items)
    assert _items(clients, dup, admin) == []
    hold = client.get(f"{API}/incidents/{keep}/evidence/hold", headers=admin).json()
    assert hold["held"] and "carried over from incident" in hold["reason"]
    report = client.get(f"{API}/evidence/ledger/verify", headers=admin).json()
    assert report["ok"], report["problems"]
    chain = client.get(f"{API}/evidence/{dup_items[0]}/custody", headers=admin).json()["items"]
    steps = [(r["action"], r["incident_id"]) for r in chain]
    own = [r for r in chain if r["item_id"] == dup_items[0]]
    assert [(r["action"], r["incident_id"]) for r in own] == [
        ("collected", dup),
        ("moved", dup),
        ("collected", keep),
    ]
    assert own[1]["details"]["to"] == keep
    assert own[2]["details"]["moved_from"] == dup
    assert own[2]["details"]["first_record"] == own[0]["seq"]
    # Each incident's own records while the item was there: the hold of each.
    assert steps.index(("hold_placed", dup)) < steps.index(("moved", dup))
    assert steps.index(("hold_placed", keep)) > steps.index(("collected", keep))
    exported = client.post(
        f"{API}/incidents/{keep}/evidence/export", json={"reason": "regulator"}, headers=admin
    )
    assert exported.status_code == 200, exported.text
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(exported.content)
    pubkey = client.get(f"{API}/evidence/pubkey", headers=admin).text
    verdict = verify_bundle(bundle, pubkey=pubkey.encode())
    assert verdict.ok, verdict.problems
    assert verdict.items == len(keep_items) + len(dup_items)
    # The merged incident's own bundle still verifies: its moved items are ledger records.
    # (Its participants moved to the survivor: alice needs a grant to export it.)
    client.post(
        f"{API}/incidents/{dup}/evidence/grants",
        json={"to": "alice", "reason": "audit of the merge"},
        headers=admin,
    ).raise_for_status()
    merged = client.post(
        f"{API}/incidents/{dup}/evidence/export", json={"reason": "audit"}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    (tmp_path / "merged.zip").write_bytes(merged.content)
    left = verify_bundle(tmp_path / "merged.zip", pubkey=pubkey.encode())
    assert left.ok, left.problems
    assert left.items == 0

    # Timelines: what moved, with counts, on both; containment named, not moved.
    kinds = [e["kind"] for e in _timeline(clients, keep, admin)]
    assert "merged_in" in kinds and "triage_recomputed" in kinds
    merged_in = next(e for e in _timeline(clients, keep, admin) if e["kind"] == "merged_in")
    assert merged_in["actor"] == "alice"
    assert merged_in["data"]["candidates"] == moving
    assert merged_in["data"]["signals"] == 2
    assert merged_in["data"]["evidence_items"] == dup_items
    assert merged_in["data"]["containment_actions"] == [action["id"]]
    assert merged_in["data"]["controls_in_force"] == [action["id"]]
    assert merged_in["data"]["legal_hold_carried"] is True
    assert "1 candidate(s) with 2 signal(s)" in merged_in["text"]
    assert f"containment actions {action['id']} (1 in force)" in merged_in["text"]
    recomputed = next(
        e for e in _timeline(clients, keep, admin) if e["kind"] == "triage_recomputed"
    )
    assert recomputed["data"]["before"]["signals"] == 1
    assert recomputed["data"]["after"]["signals"] == 3
    assert "signals 1 → 3" in recomputed["text"]
    out = next(e for e in _timeline(clients, dup, admin) if e["kind"] == "merged_out")
    assert out["data"] == merged_in["data"]
    assert f"Merged into incident {keep}" in out["text"]
    # Containment stays where it was taken.
    actions = client.get(f"{API}/incidents/{dup}/actions", headers=admin).json()["items"]
    assert [a["id"] for a in actions] == [action["id"]]


def test_a_restricted_incident_is_not_merged_into_an_open_one(
    clients: Clients, admin: H, inventory: list[str]
) -> None:
    client = clients.client

    def open_(**fields: Any) -> int:
        body = {
            "title": "Chatbot repeats injected instructions",
            "archetype": "prompt_injection",
            "severity": "SEV3",
            "systems": ["support-chatbot"],
            **fields,
        }
        answer = client.post(f"{API}/incidents", json=body, headers=admin)
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    open_one, secret = open_(), open_(visibility="restricted")
    refused = client.post(
        f"{API}/incidents/{secret}/status",
        json={"status": "merged", "merged_into": open_one},
        headers=admin,
    )
    assert refused.status_code == 409 and "restricted" in refused.json()["detail"]
    assert client.get(f"{API}/incidents/{secret}", headers=admin).json()["status"] == "triage"


def test_merge_on_the_command_line(cli: CliRunner) -> None:
    def run(*args: str) -> str:
        result = cli.invoke(app, list(args))
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    run("init")
    run("inventory", "apply", str(EXAMPLES))
    numbers = []
    for system in ("support-chatbot", "refund-agent"):
        opened = run(
            "incident",
            "open",
            "--title",
            f"Injection on {system}",
            "--archetype",
            "prompt_injection",
            "--severity",
            "SEV3",
            "--system",
            system,
            "--json",
        )
        numbers.append(str(json.loads(opened)["id"]))
    keep, dup = numbers
    run("token", "create", "--name", "bob", "--role", "responder")
    run("incident", "update", dup, "--add-participant", "bob")
    assert "merged" in run("incident", "status", dup, "merged", "--merged-into", keep)
    shown = json.loads(run("incident", "show", keep, "--json"))
    assert shown["incident"]["systems"] == ["refund-agent", "support-chatbot"]
    merged_in = next(e for e in shown["timeline"] if e["kind"] == "merged_in")
    assert merged_in["data"]["participants_added"] == ["bob"]
    assert merged_in["data"]["systems_added"] == ["refund-agent"]
    report = run("evidence", "verify-ledger")
    assert "ok" in report.lower()
