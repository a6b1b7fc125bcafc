"""Generic signals: storing one, reading them back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import NotFound
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.pipeline import SignalsRaised
from blastwall.signals.models import Signal
from blastwall.signals.schemas import SignalCreate, SignalOut, SignalStatus, refuse_nul
from blastwall.signals.service.requests import Idempotency, remember
from blastwall.signals.service.systems import SystemMatcher


def create_signal(
    session: Session,
    *,
    data: SignalCreate,
    actor: Principal,
    idempotency: Idempotency | None = None,
) -> Signal:
    """Store a signal and correlate it. With `idempotency` the key is remembered with it
    (`replay` answers a request sent before with the same key)."""
    actor.require(Permission.ingest)
    system_id = SystemMatcher(session)(data.system) if data.system else None
    now = utcnow()
    request = remember(session, idempotency, actor, now) if idempotency else None
    row = Signal(
        source=data.source,
        kind=data.kind,
        system_id=system_id,
        system_ref=data.system,
        archetype=data.archetype,
        severity=data.severity,
        status=SignalStatus.firing,
        summary=data.summary,
        attributes=data.attributes,
        trace_id=data.trace_id,
        conversation_id=data.conversation_id,
        starts_at=data.starts_at or now,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    if request is not None:
        session.flush()
        request.signal_id = row.id
    pipeline.publish(session, SignalsRaised(signals=[row], now=now))
    return row


def get_signal(session: Session, *, signal_id: int, principal: Principal) -> Signal:
    principal.require(Permission.read)
    row = session.get(Signal, signal_id)
    if row is None:
        raise NotFound(f"No signal {signal_id}. `blastwall signals list` shows the ids.")
    return row


def list_signals(
    session: Session,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    system: str | None = None,
    source: str | None = None,
    detector: str | None = None,
    kind: str | None = None,
    archetype: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    conversation_id: str | None = None,
    trace_id: str | None = None,
    unregistered: bool | None = None,
    held_by: str | None = None,
) -> tuple[list[Signal], str | None]:
    """Signals newest first; `system` matches the inventory id or the name as sent, the time
    range [since, until) applies to when Blastwall received them."""
    principal.require(Permission.read)
    texts = {"system": system, "source": source, "detector": detector, "kind": kind}
    texts |= {"conversation_id": conversation_id, "held_by": held_by}
    refuse_nul("query", texts)
    query = select(Signal).order_by(Signal.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Signal.id < after[0])
    if system:
        query = query.where(or_(Signal.system_id == system, Signal.system_ref == system))
    if source:
        query = query.where(Signal.source == source)
    if detector:
        query = query.where(Signal.detector == detector)
    if kind:
        query = query.where(Signal.kind == kind)
    if archetype:
        query = query.where(Signal.archetype == archetype)
    if severity:
        query = query.where(Signal.severity == severity)
    if status:
        query = query.where(Signal.status == status)
    if since:
        query = query.where(Signal.created_at >= since)
    if until:
        query = query.where(Signal.created_at < until)
    if conversation_id:
        query = query.where(Signal.conversation_id == conversation_id)
    if trace_id:
        query = query.where(Signal.trace_id == trace_id.lower())
    if unregistered is True:
        query = query.where(Signal.system_id.is_(None), Signal.system_ref.is_not(None))
    elif unregistered is False:
        query = query.where(or_(Signal.system_id.is_not(None), Signal.system_ref.is_(None)))
    if held_by:
        query = query.where(Signal.held_by == held_by)
    return fetch_page(session, query, limit=limit)


def to_out(row: Signal) -> SignalOut:
    return SignalOut.model_validate(
        {
            **{
                c: getattr(row, c)
                for c in (
                    "id",
                    "source",
                    "kind",
                    "system_id",
                    "system_ref",
                    "archetype",
                    "severity",
                    "status",
                    "summary",
                    "attributes",
                    "trace_id",
                    "conversation_id",
                    "fingerprint",
                    "reference",
                    "detector",
                    "detector_version",
                    "confidence",
                    "excerpt",
                    "interaction_ids",
                    "owasp",
                    "atlas",
                    "starts_at",
                    "ends_at",
                    "group_id",
                    "candidate_id",
                    "held_by",
                    "linked_by",
                    "created_by",
                    "created_at",
                    "updated_at",
                )
            },
            "unregistered": row.system_id is None and row.system_ref is not None,
        }
    )
