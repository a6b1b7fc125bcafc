"""An installation's evidence in every state the ledger covers, made through the services:
items collected, viewed, deleted, expired and moved by a merge; a legal hold in force, one
placed and lifted; a full-view grant; checkpoints in the database and in the checkpoint
file (an export's, and one more). And the tampering helpers of the ledger tests: raw SQL,
as someone with the database would do it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from blastwall.auth import service as auth_service
from blastwall.auth.roles import Principal, Role
from blastwall.db import Database, utcnow
from blastwall.evidence import custody, flows, service
from blastwall.evidence.ledger import body_hash, canonical, record_hash
from blastwall.evidence.models import EvidenceItem, LedgerHead, LedgerRecord
from blastwall.incidents import flows as incident_flows
from blastwall.incidents.models import Incident
from blastwall.incidents.schemas import IncidentCreate
from blastwall.telemetry.models import Interaction
from tests.support.evidence import add, interaction, signal, vault, witness

ALICE = Principal(name="alice", role=Role.admin)
GRANTEE = "gina"


@dataclass(frozen=True)
class State:
    held: int
    """An incident on legal hold: six files, one viewed, a grant, exported."""
    other: int
    """An incident with collected interactions, one item deleted, items moved into it by a
    merge, a hold placed and lifted."""
    free: int
    """An incident whose only item expired; no hold."""
    merged: int
    """The incident merged into `other`: its item moved there."""
    sixth: int
    """The sixth item of `held`."""
    data: Path
    """The data dir: the vault, the signing key and the checkpoint file."""


def open_incident(session: Session, title: str, signals: list[int] | None = None) -> int:
    data = IncidentCreate(
        title=title, archetype="data_exfiltration", severity="SEV2", signals=signals or []
    )
    return incident_flows.open_incident(session, data=data, actor=ALICE).id


def add_file(session: Session, incident: int, name: str, note: str = "", *, data: Path) -> int:
    item = flows.add_file(
        session,
        vault=vault(data),
        incident_id=incident,
        data=f"{name}: {note}\n".encode(),
        name=name,
        media_type="text/plain",
        note=note,
        actor=ALICE,
    )
    return item.id


def build(db: Database, data: Path) -> State:
    """The state above, in the data dir `data` (the `evidence_dir`)."""
    with db.transaction() as session:
        auth_service.create_token(session, name=GRANTEE, role=Role.responder, created_by="test")
        held = open_incident(session, "held")
        files = [
            add_file(session, held, f"note-{n}.txt", f"note {n}", data=data) for n in range(1, 7)
        ]
        custody.place_hold(session, incident_id=held, reason="litigation", actor=ALICE)
        free = open_incident(session, "free")
        add_file(session, free, "old.log", data=data)
        expired = custody.expire(
            session, vault=vault(data), actor=ALICE, days=365, now=utcnow() + timedelta(days=400)
        )
        assert [i.incident_id for i in expired] == [free]
        start = session.scalar(select(func.count()).select_from(Interaction)) or 0
        ids = add(session, [interaction(start + n, prompt=f"prompt {n}") for n in range(2)])
        other = open_incident(session, "other", [signal(session, ids)])
        first = service.kept_items(session, incident_id=other)[0]
        custody.delete_item(
            session, vault=vault(data), item_id=first.id, reason="not needed", actor=ALICE
        )
        custody.place_hold(session, incident_id=other, reason="a letter", actor=ALICE)
        custody.release_hold(session, incident_id=other, reason="withdrawn", actor=ALICE)
        merged = open_incident(session, "merged")
        add_file(session, merged, "screenshot.png", "from the customer", data=data)
        source, target = session.get(Incident, merged), session.get(Incident, other)
        assert source is not None and target is not None
        service.move_items(session, source=source, target=target, actor=ALICE, reason="dup")
        session.commit()
        custody.grant_full_view(
            session, incident_id=held, to=GRANTEE, reason="counsel", actor=ALICE
        )
        custody.read_item(
            session, vault=vault(data), item_id=files[0], principal=ALICE, reason="triage"
        )
        export(session, held, data)
        custody.read_item(
            session, vault=vault(data), item_id=files[1], principal=ALICE, reason="again"
        )
        service.checkpoint(session, witness=witness(data), key=vault(data).key())
        session.commit()
    return State(held=held, other=other, free=free, merged=merged, sixth=files[5], data=data)


def export(session: Session, incident: int, data: Path) -> bytes:
    out = io.BytesIO()
    flows.export_incident(
        session,
        incident_id=incident,
        out=out,
        reason="for counsel",
        actor=ALICE,
        witness=witness(data),
        vault=vault(data),
    )
    return out.getvalue()


def rewrite(session: Session, seq: int, edit: Any) -> None:
    """Change record `seq`'s body with `edit` (a function of its parsed body) and compute the
    chain again from there to the head, the head row too: a rewrite that leaves every link
    and column consistent."""
    import json

    records = list(
        session.scalars(
            select(LedgerRecord).where(LedgerRecord.seq >= seq).order_by(LedgerRecord.seq)
        )
    )
    prev = records[0].prev_hash
    changes = []
    for record in records:
        body = record.body
        if record.seq == seq:
            body = canonical(edit(json.loads(body)))
        digest = body_hash(body)
        hashed = record_hash(prev, digest)
        changes.append((record.seq, prev, body, digest, hashed))
        prev = hashed
    session.expunge_all()
    for number, before, body, digest, hashed in changes:
        session.execute(
            update(LedgerRecord)
            .where(LedgerRecord.seq == number)
            .values(prev_hash=before, body=body, body_hash=digest, record_hash=hashed)
        )
    session.execute(update(LedgerHead).where(LedgerHead.id == 1).values(hash=prev))


def item(session: Session, item_id: int) -> EvidenceItem:
    row = session.get(EvidenceItem, item_id)
    assert row is not None
    return row
