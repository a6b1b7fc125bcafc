"""Exporting an incident's evidence: the ledger verified first, then the bundle with its
timeline and containment snapshots, the export recorded in the ledger it carries."""

from __future__ import annotations

from functools import partial
from typing import IO, Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.comms.service.updates import published_updates, to_out
from blastwall.containment.models import ControlSnapshot
from blastwall.errors import LedgerBroken
from blastwall.evidence import custody, service, verify
from blastwall.evidence.bundle import BundleItem, BundleSnapshot, write_bundle
from blastwall.evidence.ledger import Keypair, LedgerRow
from blastwall.evidence.models import EvidenceItem, LedgerRecord
from blastwall.evidence.store import Vault
from blastwall.evidence.witness import Witness
from blastwall.incidents import service as incidents
from blastwall.incidents import timeline as incident_timeline
from blastwall.incidents.models import Incident


def _timeline(session: Session, incident: Incident, actor: Principal) -> list[dict[str, Any]]:
    """Every entry of the incident's timeline, oldest first, with its author and time."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        rows, _, cursor = incident_timeline.list_timeline(
            session, incident_id=incident.id, principal=actor, limit=500, cursor=cursor
        )
        entries += [
            {
                "id": e.id,
                "kind": e.kind,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "text": e.text,
                "data": e.data,
                "ref_id": e.ref_id,
            }
            for e in rows
        ]
        if cursor is None:
            return entries


def _snapshots(session: Session, incident: Incident) -> list[BundleSnapshot]:
    """The containment snapshots taken under the incident, each as the canonical JSON whose
    SHA-256 was recorded (the options of `containment.service.take_snapshot`)."""

    rows = session.scalars(
        select(ControlSnapshot)
        .where(ControlSnapshot.incident_id == incident.id)
        .order_by(ControlSnapshot.id)
    )
    return [
        BundleSnapshot(
            meta={
                "id": r.id,
                "system_id": r.system_id,
                "action_id": r.action_id,
                "purpose": r.purpose,
                "taken_by": r.taken_by,
                "taken_at": r.taken_at.isoformat(),
                "sha256": r.sha256,
            },
            data=orjson.dumps(r.content, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z),
        )
        for r in rows
    ]


def _verify(
    session: Session, incident: Incident, *, witness: Witness, vault: Vault, key: Keypair
) -> None:
    """Raise `LedgerBroken` with every problem unless the incident's evidence verifies."""
    report = verify.verify_incident(
        session, incident_id=incident.id, witness=witness, vault=vault, key=key
    )
    if not report.ok:
        raise LedgerBroken(
            f"Incident {incident.id}'s evidence does not verify against the ledger, so no "
            "bundle was written. Run `blastwall evidence verify-ledger` and find out what "
            "changed the database outside Blastwall before exporting.",
            report.problems,
        )


def _segment(session: Session, incident: Incident, *, start: int, end: int) -> list[LedgerRow]:
    """The ledger from the incident's first record (`start` when it has none) to `end`, with
    the bodies of the incident's own records."""
    first = session.scalar(
        select(func.min(LedgerRecord.seq)).where(LedgerRecord.incident_id == incident.id)
    )
    return [
        service.as_row(r, with_body=r.incident_id == incident.id)
        for r in session.scalars(
            select(LedgerRecord)
            .where(LedgerRecord.seq >= (first or start), LedgerRecord.seq <= end)
            .order_by(LedgerRecord.seq)
        )
    ]


def _updates(session: Session, incident: Incident) -> list[dict[str, Any]]:
    """The incident's published status updates, oldest first, each with what its audience
    and the responders got."""
    return [
        to_out(u).model_dump(mode="json")
        for u in published_updates(session, incident_id=incident.id)
    ]


def _bundle_item(item: EvidenceItem, vault: Vault) -> BundleItem:
    return BundleItem(
        meta={
            "id": item.id,
            "kind": item.kind,
            "name": item.name,
            "sha256": item.sha256,
            "size": item.size,
            "media_type": item.media_type,
            "source": item.source,
            "note": item.note,
            "collected_by": item.collected_by,
            "collected_at": item.collected_at.isoformat(),
            "record": item.record_seq,
        },
        read=partial(vault.read, item),
    )


def export_incident(
    session: Session,
    *,
    incident_id: int,
    out: IO[bytes],
    reason: str,
    actor: Principal,
    witness: Witness,
    vault: Vault,
) -> dict[str, Any]:
    """Write the incident's evidence bundle to `out`, with its timeline and containment
    snapshots. The incident's stretch of the ledger, its checkpoints (against the `witness`
    files) and its items, hold and grants are verified first: anything wrong raises
    `LedgerBroken` with every problem, and nothing is written. Then the export is recorded
    in the ledger and the ledger's head is signed, so the bundle carries its own export
    record."""
    actor.require(Permission.see_content)
    incident = service.incident_for(session, incident_id=incident_id, principal=actor)
    custody.require_full_view(session, incident_id=incident.id, principal=actor)
    key = vault.key()
    _verify(session, incident, witness=witness, vault=vault, key=key)
    items = service.kept_items(session, incident_id=incident.id)
    timeline = _timeline(session, incident, actor)
    snapshots = _snapshots(session, incident)
    record = service.append(
        session,
        action="exported",
        actor=actor,
        incident_id=incident.id,
        details={
            "reason": reason,
            "items": [i.id for i in items],
            "snapshots": [s.meta["id"] for s in snapshots],
            "timeline_entries": len(timeline),
        },
    )
    signed = service.checkpoint(session, key=key, witness=witness)
    segment = _segment(session, incident, start=record.seq, end=signed.seq)
    manifest = write_bundle(
        out,
        incident={
            "id": incident.id,
            "title": incident.title,
            "archetype": incident.archetype,
            "severity": incident.severity,
            "status": incident.status,
        },
        exported={
            "by": actor.name,
            "at": record.at.isoformat(),
            "reason": reason,
            "record": record.seq,
        },
        items=[_bundle_item(i, vault) for i in items],
        ledger=segment,
        checkpoint_message=signed.message,
        checkpoint_signature=bytes.fromhex(signed.signature),
        key=key,
        timeline=timeline,
        snapshots=snapshots,
        updates=_updates(session, incident),
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="evidence_exported",
        actor=actor,
        text=f"Evidence bundle exported ({len(items)} items, {len(timeline)} timeline entries, "
        f"{len(snapshots)} containment snapshots): {reason}",
        data={"items": [i.id for i in items], "record": record.seq},
    )
    session.flush()
    return manifest
