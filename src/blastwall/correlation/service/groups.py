"""Signal groups: one per fingerprint and firing, the signals of a candidate, and what an
incident's end, reopening or merge does to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Principal
from blastwall.correlation.models import Candidate, SignalGroup
from blastwall.correlation.service.candidates import get_candidate
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.signals.models import Signal


def latest_group(session: Session, *, fingerprint: str) -> SignalGroup | None:
    return session.scalar(
        select(SignalGroup)
        .where(SignalGroup.fingerprint == fingerprint)
        .order_by(SignalGroup.id.desc())
        .limit(1)
    )


def add_group(
    session: Session, *, signal: Signal, fingerprint: str, now: datetime, previous_id: int | None
) -> SignalGroup:
    group = SignalGroup(
        fingerprint=fingerprint,
        source=signal.source,
        kind=signal.kind,
        system=signal.system_id or signal.system_ref,
        archetype=signal.archetype,
        severity=signal.severity,
        summary=signal.summary,
        count=0,
        first_seen=now,
        last_seen=now,
        previous_id=previous_id,
    )
    session.add(group)
    session.flush()
    return group


def _groups_of_incident(incident_id: int) -> Any:
    candidates = select(Candidate.id).where(Candidate.incident_id == incident_id)
    return select(SignalGroup).where(SignalGroup.candidate_id.in_(candidates))


def resolve_groups(session: Session, *, incident_id: int, at: datetime) -> list[int]:
    """The incident ended (resolved, closed, declined): its groups not resolved yet are
    resolved at `at`, from which their quiet period counts. Answers their ids."""
    query = _groups_of_incident(incident_id).where(SignalGroup.resolved_at.is_(None))
    groups = list(session.scalars(query.order_by(SignalGroup.id)))
    for group in groups:
        group.resolved_at = at
    return [g.id for g in groups]


def reopen_groups(session: Session, *, incident_id: int, resolved_at: datetime) -> list[int]:
    """The incident was reopened: the groups its end resolved (at `resolved_at`, and not
    taken up again since) are open again. Answers their ids."""
    query = _groups_of_incident(incident_id).where(SignalGroup.resolved_at == resolved_at)
    groups = list(session.scalars(query.order_by(SignalGroup.id)))
    for group in groups:
        group.resolved_at = None
    return [g.id for g in groups]


def move_candidates(
    session: Session, *, from_incident: int, to_incident: int
) -> tuple[list[int], int]:
    """A merge: the candidates (and so the groups and signals) of one incident go to
    another, which takes their later signals too. Answers the candidates' ids and how many
    signals they hold."""
    rows = list(
        session.scalars(
            select(Candidate).where(Candidate.incident_id == from_incident).order_by(Candidate.id)
        )
    )
    for candidate in rows:
        candidate.incident_id = to_incident
    return [c.id for c in rows], sum(c.signal_count for c in rows)


def list_groups(
    session: Session,
    *,
    principal: Principal,
    candidate_id: int,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[SignalGroup], str | None]:
    """The signal groups of a candidate, oldest first."""
    candidate = get_candidate(session, candidate_id=candidate_id, principal=principal)
    query = select(SignalGroup).where(SignalGroup.candidate_id == candidate.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(SignalGroup.id > after[0])
    return fetch_page(session, query.order_by(SignalGroup.id), limit=limit)


def list_signals(
    session: Session,
    *,
    principal: Principal,
    candidate_id: int,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Signal], str | None]:
    """The signals of a candidate, newest first."""
    candidate = get_candidate(session, candidate_id=candidate_id, principal=principal)
    query = select(Signal).where(Signal.candidate_id == candidate.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Signal.id < after[0])
    return fetch_page(session, query.order_by(Signal.id.desc()), limit=limit)
