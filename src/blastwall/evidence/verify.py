"""Verifying the evidence ledger: its chain, its checkpoints in the database and outside it,
and the evidence tables against the records (`coverage.py`).

`verify_ledger` checks everything (`blastwall evidence verify-ledger`,
`GET /api/v1/evidence/ledger/verify`); `verify_incident` checks what an export of one
incident depends on, from the incident's first record to the head, and runs before every
export. Each problem names the record, checkpoint, file, item, hold or grant at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.errors import BlobMissing
from blastwall.evidence import witness as witnesses
from blastwall.evidence.coverage import Replay
from blastwall.evidence.ledger import (
    GENESIS,
    Keypair,
    LedgerRow,
    checkpoint_message,
    verify_chain,
    verify_signature,
)
from blastwall.evidence.models import (
    Checkpoint,
    EvidenceItem,
    FullViewGrant,
    LedgerHead,
    LedgerRecord,
    LegalHold,
)
from blastwall.evidence.service import as_row, iter_records
from blastwall.evidence.store import Vault
from blastwall.evidence.witness import Witness

__all__ = ["LedgerReport", "verify_incident", "verify_ledger"]

_CHUNK = 5000


@dataclass
class LedgerReport:
    records: int = 0
    checkpoints: int = 0
    witnessed: int = 0
    """Checkpoint lines read from the files outside the database."""
    head_seq: int = 0
    last_hash: str = GENESIS
    blobs: int = 0
    """Items whose bytes were read and checked (`blobs=True`)."""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Key:
    """The signing key, read when first needed (a ledger without checkpoints needs none)."""

    def __init__(self, vault: Vault, key: Keypair | None = None) -> None:
        self._vault = vault
        self._key = key

    def get(self) -> Keypair:
        if self._key is None:
            self._key = self._vault.key()
        return self._key


def verify_ledger(
    session: Session,
    *,
    witness: Witness,
    vault: Vault,
    blobs: bool = False,
    copies: Sequence[Path] = (),
) -> LedgerReport:
    """Check the whole ledger: every hash, link and column, the head row, each checkpoint's
    signature and the record it names, the checkpoint files (`witness`, and `copies`: files
    saved from elsewhere, e.g. what the checkpoint endpoint received) against the database's
    checkpoints, and every item, legal hold and full-view grant against the records; with
    `blobs`, also every kept item's bytes in the vault against its hash (reads them all)."""
    report = LedgerReport()
    replay = Replay()
    _records(session, report, replay, since=1)
    _checkpoints(session, report, _Key(vault), witness, copies, since=None)
    _rows(session, report, replay, incident=None)
    if blobs:
        store = vault.blobs
        kept = select(EvidenceItem).where(EvidenceItem.state == "kept").order_by(EvidenceItem.id)
        for item in session.scalars(kept):
            report.blobs += 1
            try:
                store.get(item.sha256)
            except BlobMissing as exc:
                report.problems.append(f"item {item.id}: {exc}")
    return report


def verify_incident(
    session: Session,
    *,
    incident_id: int,
    witness: Witness,
    vault: Vault,
    key: Keypair | None = None,
) -> LedgerReport:
    """Check what an export of the incident stands on: the chain from the incident's first
    record (or the first record any of its rows names) to the head, the head row, the
    checkpoints of that stretch and the last one, the checkpoint files against the
    database, and the incident's items, legal hold and grants against the records."""
    firsts = [
        session.scalar(
            select(func.min(LedgerRecord.seq)).where(LedgerRecord.incident_id == incident_id)
        ),
        session.scalar(
            select(func.min(EvidenceItem.record_seq)).where(EvidenceItem.incident_id == incident_id)
        ),
        session.scalar(
            select(func.min(LegalHold.record_seq)).where(LegalHold.incident_id == incident_id)
        ),
        session.scalar(
            select(func.min(FullViewGrant.record_seq)).where(
                FullViewGrant.incident_id == incident_id
            )
        ),
    ]
    head = session.scalar(select(LedgerHead.seq).where(LedgerHead.id == 1)) or 0
    since = max(1, min([int(f) for f in firsts if f is not None] or [head + 1]))
    report = LedgerReport()
    replay = Replay(partial=since > 1)
    _records(session, report, replay, since=since)
    _checkpoints(session, report, _Key(vault, key), witness, (), since=since)
    _rows(session, report, replay, incident=incident_id)
    return report


# --- the records ----------------------------------------------------------------------------


def _columns_match(record: LedgerRecord, body: Any) -> str | None:
    expected = {
        "seq": record.seq,
        "action": record.action,
        "incident": record.incident_id,
        "item": record.item_id,
        "actor": record.actor,
        "at": record.at.isoformat(),
    }
    wrong = [k for k, v in expected.items() if not isinstance(body, dict) or body.get(k) != v]
    return f"columns {', '.join(wrong)} disagree with the body" if wrong else None


def _records(session: Session, report: LedgerReport, replay: Replay, *, since: int) -> None:
    """The chain from record `since` to the head, each record's columns against its body,
    each body fed to `replay`; then the head row."""
    start_prev: str | None = GENESIS
    if since > 1:
        anchor = session.get(LedgerRecord, since - 1)
        start_prev = anchor.record_hash if anchor is not None else None
        if anchor is None:
            report.problems.append(f"record {since - 1}: missing")

    def rows() -> Iterator[LedgerRow]:
        for record in iter_records(session, since_seq=since):
            report.records += 1
            report.head_seq, report.last_hash = record.seq, record.record_hash
            try:
                body = json.loads(record.body)
            except ValueError:
                report.problems.append(f"record {record.seq}: body is not JSON")
                body = None
            problem = _columns_match(record, body)
            if problem:
                report.problems.append(f"record {record.seq}: {problem}")
            if isinstance(body, dict):
                replay.feed(record.seq, body)
            yield as_row(record)

    for brk in verify_chain(rows(), start_prev=start_prev):
        report.problems.append(str(brk))
    head = session.scalar(select(LedgerHead).where(LedgerHead.id == 1))
    if report.records == 0 and since > 1:
        last = session.get(LedgerRecord, since - 1)
        report.head_seq = since - 1
        report.last_hash = last.record_hash if last is not None else GENESIS
    last_seq, last_hash = report.head_seq, report.last_hash
    if head is None or (head.seq, head.hash) != (last_seq, last_hash):
        report.problems.append(
            f"the head row says record {head.seq if head else '?'}, the chain ends at {last_seq}"
        )
    heads = session.scalar(select(func.count()).select_from(LedgerHead))
    if heads != 1:
        report.problems.append(f"the head table holds {heads} rows, not one")
    if report.records and last_seq - since + 1 != report.records:
        report.problems.append(
            f"{report.records} records from record {since}, numbered up to {last_seq}"
        )


# --- the checkpoints --------------------------------------------------------------------


def _check_signed(
    session: Session,
    key: Keypair,
    *,
    where: str,
    seq: int,
    head: str,
    fingerprint: str,
    message: str,
    signature: str,
) -> list[str]:
    """A signed checkpoint: by this installation's key, its signature, and the record it
    names still the record it signed."""
    if fingerprint != key.fingerprint:
        return [f"{where}: signed by another key ({fingerprint})"]
    problems = []
    try:
        valid = verify_signature(key.public, bytes.fromhex(signature), message.encode())
    except ValueError:  # not hex, or not ASCII
        valid = False
    if not valid:
        problems.append(f"{where}: the signature does not verify")
    named = session.get(LedgerRecord, seq) if seq else None
    if seq and (named is None or named.record_hash != head):
        problems.append(
            f"{where}: record {seq} is not the record it signed — the ledger was changed or "
            "cut short after it was signed"
        )
    return problems


def _checkpoints(
    session: Session,
    report: LedgerReport,
    key: _Key,
    witness: Witness,
    copies: Sequence[Path],
    *,
    since: int | None,
) -> None:
    """The database's checkpoints (all, or with `since`: those of the stretch checked and
    the last), then each checkpoint file against them. A file's every line must be in the
    database, unchanged, and name a record that still has the hash it signed; the files of
    `witness` must also hold every checkpoint of the database."""
    rows = list(session.scalars(select(Checkpoint).order_by(Checkpoint.id)))
    last_id = rows[-1].id if rows else None
    seen_messages: dict[tuple[str, str], int] = {}
    for cp in rows:
        report.checkpoints += 1
        where = f"checkpoint {cp.id}"
        if (cp.message, cp.signature) in seen_messages:
            report.problems.append(
                f"{where}: repeats checkpoint {seen_messages[(cp.message, cp.signature)]}"
            )
        seen_messages.setdefault((cp.message, cp.signature), cp.id)
        if since is not None and cp.seq < since - 1 and cp.id != last_id:
            continue
        expected = checkpoint_message(
            seq=cp.seq, head=cp.head_hash, at=cp.at.isoformat(), key=cp.key_fingerprint
        )
        if cp.message != expected:
            report.problems.append(f"{where}: columns disagree with the signed message")
        report.problems += _check_signed(
            session,
            key.get(),
            where=where,
            seq=cp.seq,
            head=cp.head_hash,
            fingerprint=cp.key_fingerprint,
            message=cp.message,
            signature=cp.signature,
        )
    by_id = {cp.id: cp for cp in rows}
    files = [(path, True) for path in witness.files] + [(path, False) for path in copies]
    for path, complete in files:
        _compare_file(session, report, key, path, by_id, complete=complete, since=since)


def _compare_file(
    session: Session,
    report: LedgerReport,
    key: _Key,
    path: Path,
    by_id: dict[int, Checkpoint],
    *,
    complete: bool,
    since: int | None,
) -> None:
    if not path.exists():
        if not complete:
            report.problems.append(f"{path}: no such checkpoint file")
        elif by_id:
            report.notes.append(
                f"{path}: no checkpoint file yet, so the database's {len(by_id)} checkpoints "
                "are checked on their own (an installation upgraded from a version without "
                "it: `blastwall evidence checkpoint` writes them all to it)"
            )
        return
    try:
        entries, bad = witnesses.read(path)
    except OSError as exc:
        report.problems.append(f"{path}: cannot be read ({exc})")
        return
    report.problems += bad
    seen: dict[int, tuple[str, str]] = {}
    last = max(entries, key=lambda e: e.id, default=None)
    for entry in entries:
        report.witnessed += 1
        where = f"checkpoint {entry.id} (record {entry.seq}) in {path} line {entry.line}"
        signed = (entry.message, entry.signature)
        if entry.id in seen:
            if seen[entry.id] != signed:
                report.problems.append(f"{where}: another line holds a different checkpoint")
            continue
        seen[entry.id] = signed
        cp = by_id.get(entry.id)
        if cp is None:
            report.problems.append(
                f"{where}: not in the database — checkpoints were removed from it"
            )
        elif (cp.message, cp.signature) != signed:
            report.problems.append(
                f"{where}: the database's checkpoint {entry.id} is another — it was changed"
            )
        if since is None or entry.seq >= since - 1 or entry is last:
            report.problems += _check_signed(
                session,
                key.get(),
                where=where,
                seq=entry.seq,
                head=entry.head,
                fingerprint=entry.key,
                message=entry.message,
                signature=entry.signature,
            )
    if complete:
        for cp in by_id.values():
            if cp.id not in seen:
                report.problems.append(
                    f"checkpoint {cp.id} (record {cp.seq}): in the database but not in {path} "
                    "— added to the database, or the server stopped before writing it (its "
                    "log says so)"
                )


# --- the evidence tables ------------------------------------------------------------------


def _rows(session: Session, report: LedgerReport, replay: Replay, *, incident: int | None) -> None:
    report.problems += replay.problems
    if incident is None:
        items = list(session.scalars(select(EvidenceItem).order_by(EvidenceItem.id)))
        holds = list(session.scalars(select(LegalHold)))
        grants = list(session.scalars(select(FullViewGrant).order_by(FullViewGrant.id)))
    else:
        wanted = sorted(i for i, known in replay.items.items() if known.incident == incident)
        found = {
            row.id: row
            for row in session.scalars(
                select(EvidenceItem).where(EvidenceItem.incident_id == incident)
            )
        }
        for at in range(0, len(wanted), _CHUNK):
            chunk = wanted[at : at + _CHUNK]
            found.update(
                (row.id, row)
                for row in session.scalars(select(EvidenceItem).where(EvidenceItem.id.in_(chunk)))
            )
        items = [found[i] for i in sorted(found)]
        holds = list(session.scalars(select(LegalHold).where(LegalHold.incident_id == incident)))
        grants = list(
            session.scalars(
                select(FullViewGrant)
                .where(FullViewGrant.incident_id == incident)
                .order_by(FullViewGrant.id)
            )
        )
    report.problems += replay.check_items(items, incident=incident)
    report.problems += replay.check_holds(holds, incident=incident)
    report.problems += replay.check_grants(grants, incident=incident)
