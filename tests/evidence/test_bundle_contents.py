"""The evidence bundle holds the incident's timeline and its containment snapshots inside the
signed manifest: an export carries them, and verification fails when one is altered."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from blastwall.auth.roles import Principal, Role
from blastwall.cli import app
from blastwall.containment.models import ControlSnapshot
from blastwall.db import Database
from blastwall.evidence import flows
from blastwall.evidence.bundle import verify_bundle
from tests.conftest import Clients
from tests.support.bundles import read_members, rezip
from tests.support.evidence import evidence_dir, vault, witness

__all__ = ["evidence_dir"]  # a fixture

H = dict[str, str]
API = "/api/v1"


def _contained_incident(clients: Clients, admin: H) -> int:
    """An incident on refund-agent with a note, a refund tool revoked then restored: two
    containment snapshots (before applying, before reverting) and their timeline entries."""
    client = clients.client
    opened = client.post(
        f"{API}/incidents",
        json={
            "title": "Refund agent issues refunds outside policy",
            "archetype": "agentic_misalignment",
            "severity": "SEV2",
            "systems": ["refund-agent"],
        },
        headers=admin,
    )
    assert opened.status_code == 201, opened.text
    incident = int(opened.json()["id"])
    noted = client.post(
        f"{API}/incidents/{incident}/timeline",
        json={"kind": "note", "text": "Finance asks how much was refunded"},
        headers=admin,
    )
    assert noted.status_code == 201, noted.text
    action = client.post(
        f"{API}/incidents/{incident}/actions",
        json={"control": "revoke_tool", "params": {"tool": "issue-refund"}, "reason": "refunds"},
        headers=admin,
    )
    assert action.status_code == 201, action.text
    reverted = client.post(
        f"{API}/incidents/{incident}/actions/{action.json()['id']}/revert",
        json={"reason": "fixed"},
        headers=admin,
    )
    assert reverted.status_code == 200, reverted.text
    return incident


def _export(clients: Clients, admin: H, incident: int, tmp_path: Path) -> Path:
    answer = clients.client.post(
        f"{API}/incidents/{incident}/evidence/export",
        json={"reason": "for the regulator"},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    path = tmp_path / "bundle.zip"
    path.write_bytes(answer.content)
    return path


def test_the_bundle_holds_the_timeline_and_snapshots_and_verification_covers_them(
    clients: Clients, admin: H, inventory: list[str], evidence_dir: Path, tmp_path: Path
) -> None:
    client = clients.client
    incident = _contained_incident(clients, admin)
    timeline = client.get(f"{API}/incidents/{incident}/timeline?limit=500", headers=admin).json()
    path = _export(clients, admin, incident, tmp_path)
    members = dict(read_members(path.read_bytes()))
    manifest = json.loads(members["manifest.json"])

    # Every entry, with its author and time, as the API shows it.
    bundled = json.loads(members["timeline.json"])
    expected = timeline["items"]
    assert [e["id"] for e in bundled] == [e["id"] for e in expected]
    for ours, theirs in zip(bundled, expected, strict=True):
        assert (ours["kind"], ours["actor"], ours["text"]) == (
            theirs["kind"],
            theirs["actor"],
            theirs["text"],
        )
        assert ours["at"][:19] == theirs["at"][:19]
    assert "Finance asks how much was refunded" in [e["text"] for e in bundled]
    assert manifest["timeline"] == {"file": "timeline.json", "entries": len(bundled)}

    # Each snapshot: the canonical JSON whose SHA-256 was recorded when it was taken.
    snapshots = manifest["snapshots"]
    assert [s["purpose"] for s in snapshots] == ["apply", "revert"]
    recorded = {
        e["data"]["snapshot_id"]: e["data"]["sha256"]
        for e in bundled
        if e["kind"] == "evidence_snapshot"
    }
    for meta in snapshots:
        served = client.get(
            f"{API}/incidents/{incident}/snapshots/{meta['id']}", headers=admin
        ).json()
        data = members[meta["path"]]
        assert meta["path"] == f"snapshots/{meta['id']}-refund-agent-{meta['purpose']}.json"
        assert hashlib.sha256(data).hexdigest() == meta["sha256"] == served["sha256"]
        assert meta["sha256"] == recorded[meta["id"]] == manifest["files"][meta["path"]]
        assert json.loads(data) == served["content"]
        assert (meta["taken_by"], meta["action_id"]) == (served["taken_by"], served["action_id"])
    sums = members["SHA256SUMS"].decode()
    assert "  timeline.json\n" in sums and f"  {snapshots[0]['path']}\n" in sums
    export = [r for r in manifest["ledger"] if r["body"] and '"exported"' in r["body"]][-1]
    details = json.loads(export["body"])["details"]
    assert details["snapshots"] == [s["id"] for s in snapshots]

    verdict = verify_bundle(path)
    assert verdict.ok, verdict.problems
    assert (verdict.timeline_entries, verdict.snapshots) == (len(bundled), 2)

    def tampered(name: str, change: Any) -> list[str]:
        altered = [(n, change(d) if n == name else d) for n, d in read_members(path.read_bytes())]
        out = tmp_path / f"tampered-{len(name)}.zip"
        out.write_bytes(rezip(altered))
        return verify_bundle(out).problems

    # An author changed on the timeline.
    problems = tampered("timeline.json", lambda d: d.replace(b'"alice"', b'"mallory"', 1))
    assert any(p.startswith("timeline.json (the incident's timeline): changed") for p in problems)
    # The state before the tool was revoked, rewritten to say another system.
    first = snapshots[0]["path"]
    problems = tampered(first, lambda d: d.replace(b'"refund-agent"', b'"refund-agenz"', 1))
    assert any(
        p.startswith(f"{first} (containment snapshot {snapshots[0]['id']}): changed")
        for p in problems
    ), problems
    # A snapshot taken out of the bundle.
    without = [(n, d) for n, d in read_members(path.read_bytes()) if n != first]
    (tmp_path / "without.zip").write_bytes(rezip(without))
    problems = verify_bundle(tmp_path / "without.zip").problems
    assert any(p.startswith(f"{first} (containment snapshot") and "missing" in p for p in problems)
    # The command line names it too and exits 1.
    result = CliRunner().invoke(app, ["evidence", "verify", str(tmp_path / "without.zip")])
    assert result.exit_code == 1 and "containment snapshot" in result.output


def test_a_snapshot_changed_in_the_database_is_refused_or_named(
    clients: Clients,
    admin: H,
    inventory: list[str],
    db: Database,
    evidence_dir: Path,
    tmp_path: Path,
) -> None:
    """A snapshot whose content no longer hashes to its recorded SHA-256 is not exported;
    one rewritten with a new hash is, and verification names it: the timeline entry written
    when it was taken recorded another hash."""
    incident = _contained_incident(clients, admin)
    forged = {"system_id": "refund-agent", "control_state": {}, "recent_interactions": []}
    canonical = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    apply = (ControlSnapshot.incident_id == incident) & (ControlSnapshot.purpose == "apply")
    alice = Principal(name="alice", role=Role.admin)
    with db.transaction() as session:
        session.execute(update(ControlSnapshot).where(apply).values(content=forged))
        session.commit()
        with pytest.raises(ValueError, match=r"snapshot \d+: its content does not match"):
            flows.export_incident(
                session,
                incident_id=incident,
                out=io.BytesIO(),
                reason="test",
                actor=alice,
                witness=witness(evidence_dir),
                vault=vault(evidence_dir),
            )
        session.rollback()
        digest = hashlib.sha256(canonical).hexdigest()
        session.execute(update(ControlSnapshot).where(apply).values(sha256=digest))
        session.commit()
        path = tmp_path / "forged.zip"
        with path.open("wb") as handle:
            flows.export_incident(
                session,
                incident_id=incident,
                out=handle,
                reason="test",
                actor=alice,
                witness=witness(evidence_dir),
                vault=vault(evidence_dir),
            )
    problems = verify_bundle(path).problems
    assert len(problems) == 1, problems
    assert "the timeline recorded another SHA-256 when it was taken" in problems[0]


def test_an_incident_without_containment_has_an_empty_snapshot_list(
    clients: Clients, admin: H, inventory: list[str], evidence_dir: Path, tmp_path: Path
) -> None:
    opened = clients.client.post(
        f"{API}/incidents",
        json={"title": "Quiet", "archetype": "agentic_misalignment", "severity": "SEV3"},
        headers=admin,
    )
    path = _export(clients, admin, opened.json()["id"], tmp_path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        entries = json.loads(archive.read("timeline.json"))
    assert manifest["snapshots"] == [] and manifest["version"] == 2
    assert entries and all({"actor", "at", "kind", "text"} <= set(e) for e in entries)
    verdict = verify_bundle(path)
    assert verdict.ok and verdict.snapshots == 0
