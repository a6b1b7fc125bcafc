"""Writing a bundle: the listings first (the items' hashes are known from the ledger), then
each item read, checked and written one at a time, then the signed manifest."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from blastwall.evidence.bundle.layout import (
    FORMAT,
    TIMELINE,
    UPDATES,
    VERSION,
    Stream,
    add_member,
    item_path,
    readme,
    snapshot_path,
)
from blastwall.evidence.ledger import Keypair, LedgerRow


@dataclass(frozen=True)
class BundleItem:
    """An item to write: its manifest entry and a way to read its bytes."""

    meta: dict[str, Any]
    read: Callable[[], bytes]


@dataclass(frozen=True)
class BundleSnapshot:
    """A containment snapshot to write: its manifest entry (id, system, action, purpose,
    taken by and at, sha256) and its content as the canonical JSON that was hashed."""

    meta: dict[str, Any]
    data: bytes


def write_bundle(
    out: IO[bytes],
    *,
    incident: dict[str, Any],
    exported: dict[str, Any],
    items: list[BundleItem],
    ledger: list[LedgerRow],
    checkpoint_message: str,
    checkpoint_signature: bytes,
    key: Keypair,
    timeline: list[dict[str, Any]] | None = None,
    snapshots: list[BundleSnapshot] | None = None,
    updates: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write a bundle to `out`; return its manifest. `timeline` is the incident's entries,
    oldest first; `snapshots` its containment snapshots; `updates` its published status
    updates (`updates.json`, left out when None). A snapshot whose content does not
    hash to the SHA-256 recorded when it was taken is refused (ValueError), as is an item
    whose bytes do not match its hash."""
    kept, extra = _snapshots(snapshots or [], timeline or [], updates)
    files: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    stream = Stream(out.write)
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        # The items' hashes are known from the ledger, so every listing can be written
        # first and each item read, checked and written one at a time.
        for item in items:
            path = item_path(item.meta["id"], item.meta["name"])
            entries.append({**item.meta, "path": path})
            files[path] = item.meta["sha256"]
        fixed = {
            "README.md": readme(incident["id"]).encode(),
            "pubkey.pem": key.public_pem().encode(),
            "checkpoint.json": checkpoint_message.encode("ascii"),
            "checkpoint.sig": checkpoint_signature,
        }
        _write_listings(archive, files, fixed, extra)
        for item, entry in zip(items, entries, strict=True):
            data = item.read()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ValueError(f"item {entry['id']}: the vault's bytes do not match its hash")
            add_member(archive, entry["path"], [data], len(data))
            del data
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "incident": incident,
            "exported": exported,
            "key_fingerprint": key.fingerprint,
            "files": dict(sorted(files.items())),
            "items": entries,
            "timeline": {"file": TIMELINE, "entries": len(timeline or [])},
            "snapshots": kept,
            **(
                {"updates": {"file": UPDATES, "count": len(updates)}} if updates is not None else {}
            ),
            "checkpoint": {"file": "checkpoint.json", "signature": "checkpoint.sig"},
            "ledger": [row.as_dict() for row in ledger],
        }
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
        add_member(archive, "manifest.json", [manifest_bytes], len(manifest_bytes))
        signature = key.sign(manifest_bytes)
        add_member(archive, "manifest.sig", [signature], len(signature))
    return manifest


def _snapshots(
    snapshots: list[BundleSnapshot],
    timeline: list[dict[str, Any]],
    updates: list[dict[str, Any]] | None,
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The snapshots' manifest entries, and the timeline's and snapshots' files by name; a
    snapshot whose content does not hash to the SHA-256 recorded is refused."""
    kept: list[dict[str, Any]] = []
    extra = {TIMELINE: json.dumps(timeline, indent=1, sort_keys=True).encode() + b"\n"}
    if updates is not None:
        extra[UPDATES] = json.dumps(updates, indent=1, sort_keys=True).encode() + b"\n"
    for snapshot in snapshots:
        path = snapshot_path(snapshot.meta)
        if hashlib.sha256(snapshot.data).hexdigest() != snapshot.meta["sha256"]:
            raise ValueError(
                f"containment snapshot {snapshot.meta['id']}: its content does not match the "
                "SHA-256 recorded when it was taken"
            )
        kept.append({**snapshot.meta, "path": path})
        extra[path] = snapshot.data
    return kept, extra


def _write_listings(
    archive: zipfile.ZipFile,
    files: dict[str, str],
    fixed: dict[str, bytes],
    extra: dict[str, bytes],
) -> None:
    """The members before the items, in the order of `LEADING` then the snapshots, with
    SHA256SUMS over every file but the manifest; `files` gets their hashes."""
    for name, data in {**fixed, **extra}.items():
        files[name] = hashlib.sha256(data).hexdigest()
    sums = "".join(f"{files[n]}  {n}\n" for n in sorted(files)).encode()
    files["SHA256SUMS"] = hashlib.sha256(sums).hexdigest()
    for name, data in (
        ("README.md", fixed["README.md"]),
        ("SHA256SUMS", sums),
        ("pubkey.pem", fixed["pubkey.pem"]),
        ("checkpoint.json", fixed["checkpoint.json"]),
        ("checkpoint.sig", fixed["checkpoint.sig"]),
        *extra.items(),
    ):
        add_member(archive, name, [data], len(data))
