"""Custody of evidence: who may see it whole, every view and download recorded, the chain
of custody per item, legal holds, deletion and retention.

Broad roles see evidence redacted (personal data and secrets masked) unless they take part
in the incident or hold a full-view grant; the grant is itself a ledger record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from blastwall.auth import principals
from blastwall.auth.roles import Permission, Principal, Role
from blastwall.db import after_commit, utcnow
from blastwall.errors import Conflict, InvalidInput, PermissionDenied, Problem
from blastwall.evidence.models import EvidenceItem, FullViewGrant, LedgerRecord, LegalHold
from blastwall.evidence.service import append, get_item, incident_for
from blastwall.evidence.store import Vault
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident, Participant
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.telemetry.redact import redact_text


def has_full_view(session: Session, *, incident_id: int, principal: Principal) -> bool:
    """Participants with the right to see content see evidence whole; so do holders of a
    full-view grant. Everyone else who may see the incident gets the redacted view."""
    if not principal.can(Permission.see_content):
        return False
    participant = exists().where(
        Participant.incident_id == incident_id, Participant.principal == principal.name
    )
    granted = exists().where(
        FullViewGrant.incident_id == incident_id, FullViewGrant.principal == principal.name
    )
    return bool(session.scalar(select(or_(participant, granted))))


def require_full_view(session: Session, *, incident_id: int, principal: Principal) -> None:
    if not has_full_view(session, incident_id=incident_id, principal=principal):
        raise PermissionDenied(
            f"{principal.name} does not have the full view of incident {incident_id}'s "
            "evidence: take part in the incident, or ask a commander, legal or an admin for "
            f"a grant (`blastwall evidence grant {incident_id} --to {principal.name} "
            "--reason ...`)."
        )


def _require_grantor(principal: Principal) -> None:
    if not (principal.can(Permission.decide_incidents) or principal.can(Permission.see_restricted)):
        raise PermissionDenied(
            f"The role '{principal.role.value}' may not grant the full view of evidence. "
            "Ask a commander, legal or an admin."
        )


def grant_full_view(
    session: Session, *, incident_id: int, to: str, reason: str, actor: Principal
) -> FullViewGrant:
    _require_grantor(actor)
    incident = incident_for(session, incident_id=incident_id, principal=actor)
    if not principals.exists(session, to):
        raise InvalidInput(
            "invalid input:",
            [
                Problem(
                    "to",
                    f"no active token is named '{to}', so the grant would reach nobody: "
                    "`blastwall token list` shows the names (people at the server's "
                    "command line are 'cli:<user>'); create the token first",
                )
            ],
        )
    row = session.scalar(
        select(FullViewGrant).where(
            FullViewGrant.incident_id == incident.id, FullViewGrant.principal == to
        )
    )
    if row is None:
        row = FullViewGrant(
            incident_id=incident.id,
            principal=to,
            reason=reason,
            granted_by=actor.name,
            granted_at=utcnow(),
        )
        session.add(row)
        session.flush()
        record = append(
            session,
            action="full_view_granted",
            actor=actor,
            incident_id=incident.id,
            details={"to": to, "reason": reason, "grant": row.id},
        )
        row.granted_at, row.record_seq = record.at, record.seq
        incidents.record_entry(
            session,
            incident=incident,
            kind="evidence_access",
            actor=actor,
            text=f"Full view of evidence granted to {to}: {reason}",
            data={"to": to},
        )
    session.flush()
    return row


def read_item(
    session: Session,
    *,
    item_id: int,
    principal: Principal,
    reason: str,
    vault: Vault,
    download: bool = False,
) -> tuple[EvidenceItem, bytes, bool]:
    """The item's bytes and whether the caller may see them whole; the access is recorded.
    A download is of the original bytes and needs the full view."""
    principal.require(Permission.see_content)
    item = get_item(session, item_id=item_id, principal=principal)
    if item.state != "kept":
        raise Conflict(
            f"Evidence item {item.id} was {item.state} on {item.removed_at}; its bytes are gone."
        )
    full = has_full_view(session, incident_id=item.incident_id, principal=principal)
    if download and not full:
        require_full_view(session, incident_id=item.incident_id, principal=principal)
    data = vault.read(item)
    append(
        session,
        action="downloaded" if download else "viewed",
        actor=principal,
        incident_id=item.incident_id,
        item=item,
        details={"reason": reason, "view": "full" if full else "redacted"},
    )
    session.flush()
    return item, data, full


def custody(
    session: Session, *, item_id: int, principal: Principal, limit: int, cursor: str | None = None
) -> tuple[list[LedgerRecord], str | None]:
    """Everything that happened to an item, oldest first: its collection, each view and
    download, each export of its incident, grants, holds and its removal."""
    item = get_item(session, item_id=item_id, principal=principal)
    stays = [
        and_(
            LedgerRecord.incident_id == incident_id,
            LedgerRecord.item_id.is_(None),
            LedgerRecord.seq > start,
            *([LedgerRecord.seq < end] if end is not None else []),
        )
        for incident_id, start, end in _stays(session, item)
    ]
    query = select(LedgerRecord).where(or_(LedgerRecord.item_id == item.id, *stays))
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(LedgerRecord.seq > after[0])
    return fetch_page(session, query.order_by(LedgerRecord.seq), limit=limit, key=lambda r: [r.seq])


def _stays(session: Session, item: EvidenceItem) -> list[tuple[int | None, int, int | None]]:
    """The incidents an item belonged to, each with the records that bound its stay: from
    a `collected` record to the `moved` record that took it elsewhere (None: still there)."""
    rows = session.execute(
        select(LedgerRecord.seq, LedgerRecord.incident_id, LedgerRecord.action)
        .where(LedgerRecord.item_id == item.id, LedgerRecord.action.in_(("collected", "moved")))
        .order_by(LedgerRecord.seq)
    )
    stays: list[tuple[int | None, int, int | None]] = []
    current: tuple[int | None, int] | None = None
    for seq, incident_id, action in rows:
        if action == "collected":
            current = (incident_id, seq)
        elif current is not None:
            stays.append((current[0], current[1], seq))
            current = None
    if current is not None:
        stays.append((current[0], current[1], None))
    return stays or [(item.incident_id, item.record_seq, None)]


def carry_hold(
    session: Session, *, source: Incident, target: Incident, actor: Principal
) -> LegalHold | None:
    """A merge moved `source`'s evidence to `target`: a legal hold on `source` is placed on
    `target` too (a ledger record and a timeline entry), so that the moved items stay held.
    Answers the new hold, or None when there was nothing to carry (no commit)."""
    held = session.get(LegalHold, source.id)
    if held is None or session.get(LegalHold, target.id) is not None:
        return None
    reason = f"carried over from incident {source.id}, merged into this one: {held.reason}"
    return _place(session, target, reason=reason, actor=actor)


# --- holds, deletion, retention ------------------------------------------------------------


def _require_legal(principal: Principal) -> None:
    if not principal.can(Permission.see_restricted):
        raise PermissionDenied(
            f"The role '{principal.role.value}' may not place or lift a legal hold. "
            "Use a token with one of these roles: admin, legal."
        )


def hold_of(session: Session, *, incident_id: int) -> LegalHold | None:
    return session.get(LegalHold, incident_id)


def _record_hold(
    session: Session, incident: Incident, *, held: bool, reason: str, actor: Principal
) -> LedgerRecord:
    record = append(
        session,
        action="hold_placed" if held else "hold_released",
        actor=actor,
        incident_id=incident.id,
        details={"reason": reason},
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="legal_hold",
        actor=actor,
        text=f"Legal hold {'placed' if held else 'lifted'}: {reason}",
        data={"hold": held},
    )
    return record


def _place(session: Session, incident: Incident, *, reason: str, actor: Principal) -> LegalHold:
    """A hold row bound to its `hold_placed` record (its time, its number)."""
    record = _record_hold(session, incident, held=True, reason=reason, actor=actor)
    row = LegalHold(
        incident_id=incident.id,
        reason=reason,
        placed_by=actor.name,
        placed_at=record.at,
        record_seq=record.seq,
    )
    session.add(row)
    return row


def place_hold(session: Session, *, incident_id: int, reason: str, actor: Principal) -> LegalHold:
    _require_legal(actor)
    incident = incident_for(session, incident_id=incident_id, principal=actor)
    row = session.get(LegalHold, incident.id)
    if row is None:
        row = _place(session, incident, reason=reason, actor=actor)
    session.flush()
    return row


def release_hold(session: Session, *, incident_id: int, reason: str, actor: Principal) -> None:
    _require_legal(actor)
    incident = incident_for(session, incident_id=incident_id, principal=actor)
    row = session.get(LegalHold, incident.id)
    if row is None:
        raise Conflict(f"Incident {incident.id} is not on legal hold.")
    session.delete(row)
    _record_hold(session, incident, held=False, reason=reason, actor=actor)
    session.flush()


def _remove(
    session: Session,
    item: EvidenceItem,
    *,
    state: str,
    actor: Principal,
    reason: str,
    vault: Vault,
) -> None:
    """Remove an item's bytes: its row keeps the `deleted` or `expired` record that did it,
    and that record's time. The bytes go once the removal is committed (a rolled-back
    removal keeps them)."""
    record = append(
        session,
        action=state,
        actor=actor,
        incident_id=item.incident_id,
        item=item,
        details={"reason": reason},
    )
    item.state, item.removed_at, item.removal_seq = state, record.at, record.seq
    session.flush()
    still_used = session.scalar(
        select(exists().where(EvidenceItem.sha256 == item.sha256, EvidenceItem.state == "kept"))
    )
    if not still_used:
        after_commit(session, partial(vault.blobs.delete, item.sha256))


def delete_item(
    session: Session, *, item_id: int, reason: str, actor: Principal, vault: Vault
) -> EvidenceItem:
    if actor.role is not Role.admin:
        raise PermissionDenied("Only an admin may delete evidence; the deletion is recorded.")
    item = get_item(session, item_id=item_id, principal=actor)
    if item.state != "kept":
        raise Conflict(f"Evidence item {item.id} is already {item.state}.")
    if hold_of(session, incident_id=item.incident_id) is not None:
        raise Conflict(
            f"Incident {item.incident_id} is on legal hold: its evidence cannot be deleted "
            "until legal lifts the hold."
        )
    _remove(session, item, state="deleted", actor=actor, reason=reason, vault=vault)
    session.flush()
    return item


def expire(
    session: Session,
    *,
    actor: Principal,
    days: int,
    vault: Vault,
    now: datetime | None = None,
) -> list[EvidenceItem]:
    """Expire every kept item older than `days` (the retention period) whose incident is
    not held."""
    if actor.role is not Role.admin:
        raise PermissionDenied("Only an admin may run evidence retention.")
    cutoff = (now or utcnow()) - timedelta(days=days)
    held = select(LegalHold.incident_id)
    due = list(
        session.scalars(
            select(EvidenceItem)
            .where(
                EvidenceItem.state == "kept",
                EvidenceItem.collected_at < cutoff,
                EvidenceItem.incident_id.not_in(held),
            )
            .order_by(EvidenceItem.id)
        )
    )
    for item in due:
        _remove(
            session,
            item,
            state="expired",
            actor=actor,
            reason=f"retention of {days} days",
            vault=vault,
        )
    session.flush()
    return due


def _masked(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth >= 64:
        return "[REDACTED]"
    if isinstance(value, dict):
        return {k: _masked(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, depth + 1) for v in value]
    return value


def render(item: EvidenceItem, data: bytes, *, full: bool) -> tuple[Any, str | None]:
    """An item's content for reading: JSON as JSON, text as text, each masked (personal
    data and secrets) unless `full`; binary content is not rendered. Returns the content
    and, when it is withheld, why."""
    if item.media_type == "application/json" or item.media_type.endswith("+json"):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = None
        else:
            return (value if full else _masked(value)), None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "binary content is not shown; download it (needs the full view)"
    return (text if full else redact_text(text)), None
