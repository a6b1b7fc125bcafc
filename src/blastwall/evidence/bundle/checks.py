"""What a verification checks in a bundle's contents: the signatures, every file's hash,
the ledger segment up to the signed checkpoint, each item against its collection record,
the timeline and each containment snapshot against the hash recorded when it was taken."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from blastwall.evidence.bundle.layout import FORMAT, SIGNED, TIMELINE, UPDATES
from blastwall.evidence.ledger import (
    KeyFileError,
    LedgerRow,
    fingerprint,
    load_public_key,
    verify_chain,
    verify_signature,
)


@dataclass
class Verdict:
    """What a verification found. `problems` each name the file or item at fault."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    incident: int | None = None
    items: int = 0
    timeline_entries: int = 0
    snapshots: int = 0
    bytes: int = 0
    key_fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_contents(
    verdict: Verdict, contents: dict[str, bytes], hashes: dict[str, str], pubkey: bytes | None
) -> None:
    for required in (
        "manifest.json",
        "manifest.sig",
        "pubkey.pem",
        "checkpoint.json",
        "checkpoint.sig",
    ):
        if required not in hashes:
            verdict.problems.append(f"{required}: missing from the bundle")
    if not verdict.ok:
        return
    try:
        bundled = load_public_key(contents["pubkey.pem"])
        key = load_public_key(pubkey) if pubkey is not None else bundled
    except KeyFileError as exc:
        verdict.problems.append(f"pubkey.pem or --pubkey: {exc}")
        return
    verdict.key_fingerprint = fingerprint(key)
    if pubkey is None:
        verdict.notes.append(
            "checked against the key inside the bundle; pass --pubkey with the key from "
            "`blastwall evidence pubkey` to know who signed it"
        )
    elif fingerprint(bundled) != fingerprint(key):
        verdict.problems.append("pubkey.pem: not the public key given with --pubkey")
    if not verify_signature(key, contents["manifest.sig"], contents["manifest.json"]):
        verdict.problems.append("manifest.json: the signature manifest.sig does not verify")
        return
    manifest = json.loads(contents["manifest.json"])
    if manifest.get("format") != FORMAT:
        verdict.problems.append(f"manifest.json: not a {FORMAT}")
        return
    verdict.incident = manifest["incident"]["id"]
    labels = _labels(manifest)
    listed: dict[str, str] = manifest["files"]
    for name in sorted(set(hashes) - set(listed) - set(SIGNED)):
        verdict.problems.append(f"{name}: added — not listed in the manifest")
    for name, expected in sorted(listed.items()):
        if name not in hashes:
            verdict.problems.append(f"{labels.get(name, name)}: missing from the bundle")
        elif hashes[name] != expected:
            verdict.problems.append(
                f"{labels.get(name, name)}: changed — sha256 {hashes[name]}, expected {expected}"
            )
    _check_ledger(verdict, manifest, contents, key)
    _check_record(verdict, manifest, contents, hashes)


def _check_ledger(
    verdict: Verdict, manifest: dict[str, Any], contents: dict[str, bytes], key: Any
) -> None:
    if not verify_signature(key, contents["checkpoint.sig"], contents["checkpoint.json"]):
        verdict.problems.append("checkpoint.json: the signature checkpoint.sig does not verify")
        return
    checkpoint = json.loads(contents["checkpoint.json"])
    rows = [LedgerRow(**r) for r in manifest["ledger"]]
    for brk in verify_chain(rows):
        verdict.problems.append(f"ledger segment: {brk}")
    if not rows or (rows[-1].seq, rows[-1].record_hash) != (checkpoint["seq"], checkpoint["head"]):
        verdict.problems.append("ledger segment: does not end at the signed checkpoint's head")
    incident = verdict.incident
    collected: dict[int, dict[str, Any]] = {}
    removed: set[int] = set()
    for row in rows:
        if row.body is None:
            continue
        body = json.loads(row.body)
        if body.get("incident") != incident:
            verdict.problems.append(f"ledger record {row.seq}: belongs to another incident")
        if body.get("action") == "collected":
            collected[body["item"]] = body
        elif body.get("action") in ("deleted", "expired", "moved"):
            removed.add(body["item"])
    for meta in manifest["items"]:
        verdict.items += 1
        record = collected.get(meta["id"])
        where = f"{meta['path']} (item {meta['id']}, {meta['kind']})"
        if record is None:
            verdict.problems.append(f"{where}: no collection record in the ledger segment")
        elif record["item_hash"] != meta["sha256"] or meta["sha256"] != manifest["files"].get(
            meta["path"]
        ):
            verdict.problems.append(f"{where}: its hash is not the one the ledger recorded")
        elif isinstance(record.get("row"), dict):
            wrong = _unbound(record, meta, incident)
            if wrong:
                verdict.problems.append(
                    f"{where}: {', '.join(wrong)} in the manifest differ from its collection "
                    f"record {record.get('seq')}"
                )
    listed_ids = {m["id"] for m in manifest["items"]}
    for item_id in sorted(set(collected) - listed_ids - removed):
        verdict.problems.append(
            f"item {item_id}: collected in the ledger but missing from the bundle"
        )


def _unbound(record: dict[str, Any], meta: dict[str, Any], incident: int | None) -> list[str]:
    """The fields of a manifest's item that its collection record contradicts (records
    since field binding hold the item's row)."""
    row: dict[str, Any] = record["row"]
    wrong = [k for k, v in row.items() if k != "incident" and meta.get(k) != v]
    if row.get("incident") != incident:
        wrong.append("incident")
    if meta.get("record") != record.get("seq"):
        wrong.append("record")
    return wrong


def _check_record(
    verdict: Verdict, manifest: dict[str, Any], contents: dict[str, bytes], hashes: dict[str, str]
) -> None:
    """The timeline and the containment snapshots (bundles of version 2 on): each snapshot
    is the content whose SHA-256 was recorded when it was taken, and the timeline's
    `evidence_snapshot` entry for it recorded that same hash."""
    if manifest.get("version", 1) < 2:
        return
    listed: dict[str, str] = manifest["files"]
    if TIMELINE not in listed:
        verdict.problems.append(f"{TIMELINE}: not listed in the manifest")
        return
    entries: list[dict[str, Any]] = []
    if hashes.get(TIMELINE) == listed[TIMELINE]:
        try:
            entries = json.loads(contents[TIMELINE])
        except ValueError as exc:
            verdict.problems.append(f"{TIMELINE}: not JSON ({exc})")
        verdict.timeline_entries = len(entries)
    recorded = {
        e["data"].get("snapshot_id"): e["data"].get("sha256")
        for e in entries
        if e.get("kind") == "evidence_snapshot" and isinstance(e.get("data"), dict)
    }
    for meta in manifest.get("snapshots", []):
        verdict.snapshots += 1
        where = f"{meta['path']} (containment snapshot {meta['id']})"
        if listed.get(meta["path"]) != meta["sha256"]:
            verdict.problems.append(
                f"{where}: not the content whose SHA-256 was recorded when it was taken"
            )
        if meta["id"] in recorded and recorded[meta["id"]] != meta["sha256"]:
            verdict.problems.append(
                f"{where}: the timeline recorded another SHA-256 when it was taken"
            )


def _labels(manifest: dict[str, Any]) -> dict[str, str]:
    """What each file of the bundle is, for the problems that name it."""
    labels = {m["path"]: f"{m['path']} (item {m['id']}, {m['kind']})" for m in manifest["items"]}
    for m in manifest.get("snapshots", []):
        labels[m["path"]] = f"{m['path']} (containment snapshot {m['id']})"
    labels[TIMELINE] = f"{TIMELINE} (the incident's timeline)"
    labels[UPDATES] = f"{UPDATES} (the incident's published status updates)"
    return labels
