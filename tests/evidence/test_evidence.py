"""The evidence vault through the API: collection when an incident opens, custody, access by
role and participation, legal hold, retention, export and verification."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from blastwall.api import create_app
from blastwall.auth.roles import Principal, Role
from blastwall.db import Database, utcnow
from blastwall.evidence import custody
from blastwall.evidence.bundle import verify_bundle
from blastwall.evidence.vault import FileStore
from blastwall.settings import Settings
from tests.conftest import Clients
from tests.support.evidence import add, evidence_dir, interaction, signal, vault

__all__ = ["evidence_dir"]

H = dict[str, str]
API = "/api/v1"


def _open(clients: Clients, headers: H, **fields: Any) -> dict[str, Any]:
    body = {
        "title": "Support bot leaks a customer's e-mail",
        "archetype": "data_exfiltration",
        "severity": "SEV2",
        "systems": ["support-chatbot"],
    }
    body.update(fields)
    answer = clients.client.post(f"{API}/incidents", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _seed(db: Database, system: str = "support-chatbot") -> tuple[list[int], int]:
    with db.transaction() as session:
        ids = add(
            session,
            [
                interaction(
                    1, prompt="my mail is carol@example.com", system=system, trace="a" * 32
                ),
                interaction(2, prompt="and again", system=system, trace="a" * 32),
                interaction(3, prompt="unrelated", system=system),
            ],
        )
        return ids, signal(session, ids[:2], system)


def _items(clients: Clients, headers: H, incident: int) -> list[dict[str, Any]]:
    answer = clients.client.get(f"{API}/incidents/{incident}/evidence", headers=headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_interactions_collected_when_incident_opens(
    clients: Clients, admin: H, inventory: list[str], db: Database, evidence_dir: Path
) -> None:
    ids, signal_id = _seed(db)
    incident = _open(clients, admin, signals=[signal_id])
    items = _items(clients, admin, incident["id"])
    assert [(i["kind"], i["source"]) for i in items] == [
        ("interaction", f"interaction:{ids[0]}"),
        ("interaction", f"interaction:{ids[1]}"),
        ("trace_tree", f"trace:{'a' * 32}"),
    ]
    store = FileStore(evidence_dir / "vault")
    assert all(store.exists(i["sha256"]) for i in items)
    timeline = clients.client.get(
        f"{API}/incidents/{incident['id']}/timeline?kind=evidence_collected", headers=admin
    ).json()["items"]
    assert "2 interactions, 1 trace tree" in timeline[0]["text"]
    # A later signal adds its interactions; those already kept are not collected twice.
    with db.transaction() as session:
        later = signal(session, [ids[1], ids[2]])
    answer = clients.client.post(
        f"{API}/incidents/{incident['id']}/evidence/collect",
        json={"signals": [later]},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    assert [i["source"] for i in answer.json()] == [
        f"interaction:{ids[2]}",
        f"trace:{3:032x}",  # the helper's trace id of its third interaction,
    ]
    unknown = clients.client.post(
        f"{API}/incidents/{incident['id']}/evidence/collect",
        json={"signals": [later, 999_999], "interactions": [999_998]},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.json()["errors"]] == ["signals", "interactions"]
    assert "999999" in unknown.json()["errors"][0]["message"]


def test_views_are_recorded_and_broad_roles_see_redacted(
    clients: Clients, admin: H, inventory: list[str], db: Database, evidence_dir: Path
) -> None:
    _, signal_id = _seed(db)
    incident = _open(clients, admin, signals=[signal_id])
    item = _items(clients, admin, incident["id"])[0]
    url = f"{API}/evidence/{item['id']}"
    # alice opened the incident: a participant sees the content whole.
    full = clients.client.post(f"{url}/view", json={"reason": "triage"}, headers=admin).json()
    assert full["view"] == "full"
    assert "carol@example.com" in str(full["content"])
    # bob, a responder who is not a participant, sees it masked.
    bob = clients.headers("responder", "bob")
    masked = clients.client.post(f"{url}/view", json={"reason": "curious"}, headers=bob).json()
    assert masked["view"] == "redacted"
    assert "carol@example.com" not in str(masked["content"])
    assert "[EMAIL]" in str(masked["content"])
    refused = clients.client.post(f"{url}/download", json={"reason": "copy"}, headers=bob)
    assert refused.status_code == 403
    assert "grant" in refused.json()["detail"]
    # A viewer may not read content at all; a reason is required.
    viewer = clients.headers("viewer", "vic")
    assert (
        clients.client.post(f"{url}/view", json={"reason": "x" * 5}, headers=viewer).status_code
        == 403
    )
    assert clients.client.post(f"{url}/view", json={}, headers=bob).status_code == 422
    # A grant to a name no token has would reach nobody (a typo): refused, nothing recorded.
    typo = clients.client.post(
        f"{API}/incidents/{incident['id']}/evidence/grants",
        json={"to": "bbo", "reason": "needs the raw prompt"},
        headers=admin,
    )
    assert typo.status_code == 422
    assert typo.json()["errors"][0]["field"] == "to"
    assert "token list" in typo.json()["errors"][0]["message"]
    # The commander grants bob the full view; the grant is recorded.
    granted = clients.client.post(
        f"{API}/incidents/{incident['id']}/evidence/grants",
        json={"to": "bob", "reason": "needs the raw prompt"},
        headers=admin,
    )
    assert granted.status_code == 201, granted.text
    again = clients.client.post(f"{url}/view", json={"reason": "now whole"}, headers=bob).json()
    assert again["view"] == "full"
    raw = clients.client.post(f"{url}/download", json={"reason": "to analyse"}, headers=bob)
    assert raw.status_code == 200
    assert raw.headers["x-content-sha256"] == item["sha256"]
    custody = clients.client.get(f"{url}/custody", headers=admin).json()["items"]
    assert [(c["action"], c["actor"], c["details"].get("reason")) for c in custody] == [
        ("collected", "alice", None),
        ("viewed", "alice", "triage"),
        ("viewed", "bob", "curious"),
        ("full_view_granted", "alice", "needs the raw prompt"),
        ("viewed", "bob", "now whole"),
        ("downloaded", "bob", "to analyse"),
    ]
    assert custody[2]["details"]["view"] == "redacted"
    audit = clients.client.get(f"{API}/audit?object=evidence:{item['id']}", headers=admin)
    assert audit.status_code == 200


def test_restricted_incident_evidence_is_hidden(
    clients: Clients, admin: H, inventory: list[str], db: Database, evidence_dir: Path
) -> None:
    _, signal_id = _seed(db)
    incident = _open(clients, admin, signals=[signal_id], visibility="restricted")
    item = _items(clients, admin, incident["id"])[0]
    bob = clients.headers("responder", "bob")
    assert clients.client.get(f"{API}/evidence/{item['id']}", headers=bob).status_code == 404
    listing = clients.client.get(f"{API}/incidents/{incident['id']}/evidence", headers=bob)
    assert listing.status_code == 404
    assert clients.client.get(f"{API}/evidence/{item['id']}").status_code == 401


def test_files_snapshots_and_reproductions(
    clients: Clients, admin: H, inventory: list[str], evidence_dir: Path
) -> None:
    incident = _open(clients, admin)["id"]
    upload = clients.client.post(
        f"{API}/incidents/{incident}/evidence/files?name=screenshot.png&note=from the customer",
        content=b"\x89PNG\r\n\x1a\n...",
        headers={**admin, "Content-Type": "image/png"},
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["media_type"] == "image/png"
    snap = clients.client.post(
        f"{API}/incidents/{incident}/evidence/snapshot", json={}, headers=admin
    )
    assert snap.status_code == 201, snap.text
    repro = clients.client.post(
        f"{API}/incidents/{incident}/evidence/reproductions",
        json={
            "input": "ignore previous instructions",
            "result": "I cannot do that",
            "model_version": "gpt-x-2026-10",
            "environment": {"temperature": 0.7},
            "differed": True,
        },
        headers=admin,
    )
    assert repro.status_code == 201, repro.text
    kinds = [i["kind"] for i in _items(clients, admin, incident)]
    assert kinds == ["file", "config_snapshot", "reproduction"]
    shown = clients.client.post(
        f"{API}/evidence/{snap.json()['id']}/view",
        json={"reason": "what was deployed"},
        headers=admin,
    ).json()
    assert [s["id"] for s in shown["content"]["systems"]] == ["support-chatbot"]
    controls = shown["content"]["controls"]["support-chatbot"]
    assert controls["system_id"] == "support-chatbot" and controls["controls"] == []
    png = clients.client.post(
        f"{API}/evidence/{upload.json()['id']}/view", json={"reason": "look"}, headers=admin
    ).json()
    assert png["content"] is None and "binary" in png["withheld"]


def test_legal_hold_blocks_deletion_and_expiry(
    clients: Clients, admin: H, inventory: list[str], db: Database, evidence_dir: Path
) -> None:
    _, signal_id = _seed(db)
    held = _open(clients, admin, signals=[signal_id])["id"]
    free = _open(clients, admin, title="another")["id"]
    clients.client.post(
        f"{API}/incidents/{free}/evidence/files?name=log.txt", content=b"old log", headers=admin
    )
    legal = clients.headers("legal", "lena")
    commander = clients.headers("commander", "cmd")
    hold_url = f"{API}/incidents/{held}/evidence/hold"
    assert (
        clients.client.post(hold_url, json={"reason": "litigation"}, headers=commander).status_code
        == 403
    )
    placed = clients.client.post(hold_url, json={"reason": "litigation"}, headers=legal)
    assert placed.status_code == 200 and placed.json()["held"] is True
    item = _items(clients, admin, held)[0]
    refused = clients.client.post(
        f"{API}/evidence/{item['id']}/delete", json={"reason": "cleanup"}, headers=admin
    )
    assert refused.status_code == 409
    assert "legal hold" in refused.json()["detail"]
    # Nothing is past the retention period yet.
    expired = clients.client.post(f"{API}/evidence/expire", headers=admin)
    assert expired.status_code == 200 and expired.json() == [], expired.text
    # 400 days later, only the evidence not held expires. (The items are not aged in the
    # database: a changed collection time no longer matches its ledger record.)
    with db.transaction() as session:
        later = utcnow() + timedelta(days=400)
        gone_now = custody.expire(
            session,
            actor=Principal(name="alice", role=Role.admin),
            days=365,
            now=later,
            vault=vault(evidence_dir),
        )
    assert [i.incident_id for i in gone_now] == [free]
    assert all(i["state"] == "kept" for i in _items(clients, admin, held))
    gone = _items(clients, admin, free)[0]
    assert gone["state"] == "expired"
    assert not FileStore(evidence_dir / "vault").exists(gone["sha256"])
    released = clients.client.post(f"{hold_url}/release", json={"reason": "settled"}, headers=legal)
    assert released.status_code == 200
    deleted = clients.client.post(
        f"{API}/evidence/{item['id']}/delete", json={"reason": "settled, not needed"}, headers=admin
    )
    assert deleted.status_code == 200 and deleted.json()["state"] == "deleted"
    assert (
        clients.client.post(
            f"{API}/evidence/{item['id']}/view", json={"reason": "see"}, headers=admin
        ).status_code
        == 409
    )
    report = clients.client.get(f"{API}/evidence/ledger/verify", headers=legal).json()
    assert report["ok"], report["problems"]
    assert clients.client.get(f"{API}/evidence/ledger/verify", headers=commander).status_code == 403


def test_export_over_api_verifies_offline(
    clients: Clients,
    admin: H,
    inventory: list[str],
    db: Database,
    evidence_dir: Path,
    tmp_path: Path,
) -> None:
    _, signal_id = _seed(db)
    incident = _open(clients, admin, signals=[signal_id])["id"]
    answer = clients.client.post(
        f"{API}/incidents/{incident}/evidence/export",
        json={"reason": "for the regulator"},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(answer.content)
    pubkey = clients.client.get(f"{API}/evidence/pubkey", headers=admin).text
    verdict = verify_bundle(bundle, pubkey=pubkey.encode())
    assert verdict.ok, verdict.problems
    assert (verdict.incident, verdict.items) == (incident, 3)
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    assert names[:5] == [
        "README.md",
        "SHA256SUMS",
        "pubkey.pem",
        "checkpoint.json",
        "checkpoint.sig",
    ]
    assert names[-2:] == ["manifest.json", "manifest.sig"]
    # Someone without the full view may not export.
    bob = clients.headers("responder", "bob")
    refused = clients.client.post(
        f"{API}/incidents/{incident}/evidence/export", json={"reason": "mine"}, headers=bob
    )
    assert refused.status_code == 403
    timeline = clients.client.get(
        f"{API}/incidents/{incident}/timeline?kind=evidence_exported", headers=admin
    ).json()["items"]
    assert "for the regulator" in timeline[0]["text"]


def test_large_uploads_and_a_damaged_vault_are_named(
    clients: Clients,
    admin: H,
    inventory: list[str],
    evidence_dir: Path,
) -> None:
    incident = _open(clients, admin)["id"]
    url = f"{API}/incidents/{incident}/evidence/files?name=big.bin"
    limited = create_app(clients.db, Settings(evidence_max_upload_bytes=1024))
    with TestClient(limited) as client:
        big = client.post(url, content=b"0" * 1025, headers=admin)
    assert big.status_code == 413 and "blastwall evidence add" in big.json()["detail"]
    small = clients.client.post(url, content=b"0123", headers=admin).json()
    blob = FileStore(evidence_dir / "vault").path(small["sha256"])
    blob.chmod(0o644)
    blob.write_bytes(b"4321")
    damaged = clients.client.post(
        f"{API}/evidence/{small['id']}/view", json={"reason": "look"}, headers=admin
    )
    assert damaged.status_code == 500
    assert f"Evidence item {small['id']}" in damaged.json()["detail"]
