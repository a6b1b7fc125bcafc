"""Evidence bundles: writing one, and verifying one offline.

This module needs neither the server nor the database. A bundle is a zip file, written in
one canonical layout (members stored uncompressed, in a fixed order, with fixed timestamps
and attributes, streamed with data descriptors), holding:

    README.md           how to verify by hand
    SHA256SUMS          `sha256sum -c` input for every file below but the manifest
    pubkey.pem          the signing public key (compare it with `blastwall evidence pubkey`)
    checkpoint.json     the signed ledger checkpoint (exact signed bytes)
    checkpoint.sig      its raw 64-byte Ed25519 signature
    timeline.json       every entry of the incident's timeline, with its author and time
    snapshots/<id>-...  each containment snapshot: the canonical JSON whose SHA-256 was
                        recorded when it was taken, before a containment change
    items/<id>-<name>   the evidence items, byte for byte as collected
    manifest.json       incident, items, snapshots, the sha256 of every file, the ledger
    manifest.sig        raw Ed25519 signature of manifest.json

`verify_bundle` checks the signatures, every file's hash, the ledger segment's chain up to
the signed checkpoint, each item against its collection record, each snapshot against the
hash recorded when it was taken (and on the timeline) — and, by writing the same members
again in the canonical layout, in the canonical order (the order above; snapshots and items
in the manifest's order), and comparing, every byte of the zip outside them.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from blastwall.evidence.ledger import (
    KeyFileError,
    Keypair,
    LedgerRow,
    fingerprint,
    load_public_key,
    verify_chain,
    verify_signature,
)

__all__ = [
    "FORMAT",
    "TIMELINE",
    "BundleItem",
    "BundleSnapshot",
    "Verdict",
    "verify_bundle",
    "write_bundle",
]

FORMAT = "blastwall-evidence-bundle"
#: Version 2 adds the timeline and the containment snapshots; version 1 bundles still verify.
VERSION = 2
TIMELINE = "timeline.json"
CHUNK = 4 << 20
_STAMP = (1980, 1, 1, 0, 0, 0)
SIGNED = ("manifest.json", "manifest.sig")
#: The members before the snapshots and items, in the order they are written.
LEADING = ("README.md", "SHA256SUMS", "pubkey.pem", "checkpoint.json", "checkpoint.sig", TIMELINE)


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


def _safe(name: str, default: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or default)[:120]


def item_path(item_id: int, name: str) -> str:
    return f"items/{item_id}-{_safe(name, 'item')}"


def snapshot_path(meta: dict[str, Any]) -> str:
    name = _safe(f"{meta['system_id']}-{meta['purpose']}", "snapshot")
    return f"snapshots/{meta['id']}-{name}.json"


class _Stream:
    """A write-only, non-seekable sink: the zip is always streamed, so that the layout does
    not depend on whether the target could seek."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self.pos = 0

    def write(self, data: bytes) -> int:
        self._write(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def seekable(self) -> bool:
        return False


def _info(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_STAMP)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    info.file_size = size
    return info


def _add(archive: zipfile.ZipFile, name: str, chunks: Iterable[bytes], size: int) -> None:
    with archive.open(_info(name, size), "w") as dest:
        for chunk in chunks:
            dest.write(chunk)


def _readme(incident_id: int) -> str:
    return (
        (Path(__file__).parent.parent / "bundle_readme.md")
        .read_text()
        .replace("{incident}", str(incident_id))
    )


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
) -> dict[str, Any]:
    """Write a bundle to `out`; return its manifest. `timeline` is the incident's entries,
    oldest first; `snapshots` its containment snapshots. A snapshot whose content does not
    hash to the SHA-256 recorded when it was taken is refused (ValueError), as is an item
    whose bytes do not match its hash."""
    files: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    extra = {TIMELINE: json.dumps(timeline or [], indent=1, sort_keys=True).encode() + b"\n"}
    for snapshot in snapshots or []:
        path = snapshot_path(snapshot.meta)
        if hashlib.sha256(snapshot.data).hexdigest() != snapshot.meta["sha256"]:
            raise ValueError(
                f"containment snapshot {snapshot.meta['id']}: its content does not match the "
                "SHA-256 recorded when it was taken"
            )
        kept.append({**snapshot.meta, "path": path})
        extra[path] = snapshot.data
    stream = _Stream(out.write)
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        # The items' hashes are known from the ledger, so every listing can be written
        # first and each item read, checked and written one at a time.
        for item in items:
            path = item_path(item.meta["id"], item.meta["name"])
            entries.append({**item.meta, "path": path})
            files[path] = item.meta["sha256"]
        fixed = {
            "README.md": _readme(incident["id"]).encode(),
            "pubkey.pem": key.public_pem().encode(),
            "checkpoint.json": checkpoint_message.encode("ascii"),
            "checkpoint.sig": checkpoint_signature,
        }
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
            _add(archive, name, [data], len(data))
        for item, entry in zip(items, entries, strict=True):
            data = item.read()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise ValueError(f"item {entry['id']}: the vault's bytes do not match its hash")
            _add(archive, entry["path"], [data], len(data))
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
            "checkpoint": {"file": "checkpoint.json", "signature": "checkpoint.sig"},
            "ledger": [row.as_dict() for row in ledger],
        }
        manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
        _add(archive, "manifest.json", [manifest_bytes], len(manifest_bytes))
        signature = key.sign(manifest_bytes)
        _add(archive, "manifest.sig", [signature], len(signature))
    return manifest


# --- verification -----------------------------------------------------------------------


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


class _Comparer:
    """A sink that compares what is written to it with the original file's bytes."""

    def __init__(self, original: IO[bytes]) -> None:
        self.original = original
        self.pos = 0
        self.first_difference: int | None = None

    def write(self, data: bytes) -> int:
        theirs = self.original.read(len(data))
        if theirs != data and self.first_difference is None:
            common = next(
                (i for i, (a, b) in enumerate(zip(theirs, data, strict=False)) if a != b),
                min(len(theirs), len(data)),
            )
            self.first_difference = self.pos + common
        self.pos += len(data)
        return len(data)


def _data_offset(raw: IO[bytes], info: zipfile.ZipInfo) -> int | None:
    """Where a member's bytes start: after its local header, name and extra field; None
    when the header is not where the central directory says."""
    if info.header_offset < 0:
        return None
    raw.seek(info.header_offset)
    header = raw.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    offset: int = info.header_offset + 30 + name_length + extra_length
    return offset


def _canonical_order(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's members in the order `write_bundle` writes them: `LEADING`, the
    snapshots and the items in the manifest's order, the manifest and its signature; any
    other member after them. Without a readable manifest, the order they are in (its
    absence fails the check anyway)."""
    infos = archive.infolist()
    try:
        manifest = json.loads(archive.read("manifest.json"))
        listed = [m["path"] for m in manifest.get("snapshots", [])]
        listed += [m["path"] for m in manifest["items"]]
        rank = {name: i for i, name in enumerate([*LEADING, *listed, *SIGNED])}
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        TypeError,
        AttributeError,
        RuntimeError,
        NotImplementedError,
    ):
        return infos
    return sorted(infos, key=lambda info: rank.get(info.filename, len(rank)))


def _labels(manifest: dict[str, Any]) -> dict[str, str]:
    """What each file of the bundle is, for the problems that name it."""
    labels = {m["path"]: f"{m['path']} (item {m['id']}, {m['kind']})" for m in manifest["items"]}
    for m in manifest.get("snapshots", []):
        labels[m["path"]] = f"{m['path']} (containment snapshot {m['id']})"
    labels[TIMELINE] = f"{TIMELINE} (the incident's timeline)"
    return labels


def verify_bundle(path: Path, *, pubkey: bytes | None = None) -> Verdict:
    """Verify a bundle file offline; `pubkey` (PEM or 64 hex digits) is the key it must be
    signed with — without it, the key inside the bundle is used and a note says so."""
    verdict = Verdict()
    try:
        archive = zipfile.ZipFile(path)
    except (
        zipfile.BadZipFile,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        NotImplementedError,
    ) as exc:
        # A damaged header can make zipfile raise more than BadZipFile (a name that is not
        # UTF-8, a bad struct, a version field it does not know): all mean the same here.
        verdict.problems.append(f"{path}: not a readable zip file ({exc})")
        return verdict
    with archive, path.open("rb") as original:
        contents: dict[str, bytes] = {}
        hashes: dict[str, str] = {}
        names = [i.filename for i in archive.infolist()]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            verdict.problems.append(f"{dup}: appears more than once in the zip")
        members = _canonical_order(archive)
        for found, expected in zip(names, (i.filename for i in members), strict=True):
            if found != expected:
                verdict.problems.append(
                    f"{path.name}: the members are not in the canonical order ({found} where "
                    f"{expected} belongs)"
                )
                break
        # One pass over the members: read each one's bytes straight from the file, hash
        # them, and write them again in the canonical layout into a sink that compares with
        # the original file's bytes (so headers, sizes and CRCs are checked too).
        comparer = _Comparer(original)
        with (
            path.open("rb") as raw,
            zipfile.ZipFile(_Stream(comparer.write), "w") as again,
            ThreadPoolExecutor(1, thread_name_prefix="bundle-sha256") as hasher,
        ):
            for info in members:
                data_at = _data_offset(raw, info)
                if data_at is None:
                    verdict.problems.append(f"{info.filename}: damaged in the zip (bad header)")
                    continue
                raw.seek(data_at)
                digest = hashlib.sha256()
                large = info.filename.startswith(("items/", "snapshots/"))
                kept = None if large else bytearray()
                left = info.compress_size
                try:
                    with again.open(_info(info.filename, left), "w") as copy:
                        while left > 0 and (chunk := raw.read(min(CHUNK, left))):
                            left -= len(chunk)
                            # SHA-256 in a second thread while this one does the CRC-32
                            # and the comparison: both release the GIL on large buffers.
                            hashing = hasher.submit(digest.update, chunk)
                            copy.write(chunk)
                            hashing.result()
                            verdict.bytes += len(chunk)
                            if kept is not None:
                                kept += chunk
                        if left:
                            raise EOFError("the file ends inside this member")
                except (OSError, EOFError, RuntimeError, ValueError) as exc:
                    verdict.problems.append(f"{info.filename}: damaged in the zip ({exc})")
                    continue
                hashes[info.filename] = digest.hexdigest()
                if kept is not None:
                    contents[info.filename] = bytes(kept)
        rest = original.read(1)
        _check_contents(verdict, contents, hashes, pubkey)
        if verdict.ok and (comparer.first_difference is not None or rest):
            at = comparer.first_difference
            verdict.problems.append(
                f"{path.name}: the zip's own structure differs from the canonical layout at "
                f"byte {at if at is not None else comparer.pos} (outside the files' contents: "
                "a header, a timestamp or trailing bytes)"
            )
    return verdict


def _check_contents(
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
