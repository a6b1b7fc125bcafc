"""Incident candidates: finding the one a signal joins, the systems they cover, what people
may see of them and how they are described."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.correlation.models import Candidate, CandidateSystem
from blastwall.correlation.schemas import Affected, CandidateOut, Evidence
from blastwall.errors import NotFound
from blastwall.incidents.models import Incident
from blastwall.incidents.service import visible_to
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.signals.models import Signal


def latest_candidate(session: Session, *, key: str) -> Candidate | None:
    return session.scalar(
        select(Candidate).where(Candidate.key == key).order_by(Candidate.id.desc()).limit(1)
    )


def candidate_of_conversation(session: Session, *, conversation_id: str) -> Candidate | None:
    """The candidate of the latest signal about this conversation that has one."""
    found = session.scalar(
        select(Signal.candidate_id)
        .where(Signal.conversation_id == conversation_id, Signal.candidate_id.is_not(None))
        .order_by(Signal.id.desc())
        .limit(1)
    )
    return session.get(Candidate, found) if found is not None else None


def signals_sharing(
    session: Session, *, field: str, value: str, since: datetime, besides: int, limit: int = 20
) -> list[Signal]:
    """The latest signals with a candidate whose `trace_id` or `conversation_id` (`field`) is
    `value`, received since `since`, other than signal `besides`; newest first."""
    column = Signal.trace_id if field == "trace" else Signal.conversation_id
    query = (
        select(Signal)
        .where(
            column == value,
            Signal.candidate_id.is_not(None),
            Signal.created_at >= since,
            Signal.id != besides,
        )
        .order_by(Signal.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def group_has_joined(session: Session, *, group_id: int, candidate_id: int) -> bool:
    """Whether a signal of the group joined the candidate already."""
    query = select(Signal.id).where(
        Signal.group_id == group_id, Signal.candidate_id == candidate_id
    )
    return session.scalar(query.limit(1)) is not None


def baseline_count(
    session: Session, *, system: str, archetype: str | None, since: datetime, until: datetime
) -> int:
    """A system's usual signals (of the archetype, when given) received in [since, until):
    warning or graver, not held back, outside incidents."""
    query = (
        select(func.count(Signal.id))
        .outerjoin(Candidate, Candidate.id == Signal.candidate_id)
        .where(
            Signal.system_id == system,
            Signal.created_at >= since,
            Signal.created_at < until,
            Signal.severity != "info",
            Signal.held_by.is_(None),
            Candidate.incident_id.is_(None),
        )
    )
    if archetype is not None:
        query = query.where(Signal.archetype == archetype)
    return int(session.scalar(query) or 0)


def candidates_covering(session: Session, *, system: str, limit: int = 20) -> list[Candidate]:
    """Candidates that cover a system, newest first."""
    query = (
        select(Candidate)
        .join(CandidateSystem, CandidateSystem.candidate_id == Candidate.id)
        .where(CandidateSystem.system == system)
        .order_by(Candidate.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def recent_candidates(
    session: Session, *, archetypes: list[str], since: datetime
) -> list[Candidate]:
    """Candidates of these archetypes with a signal since `since`, or with an incident."""
    query = (
        select(Candidate)
        .where(
            Candidate.archetype.in_(archetypes),
            or_(Candidate.last_signal_at >= since, Candidate.incident_id.is_not(None)),
        )
        .order_by(Candidate.id.desc())
        .limit(50)
    )
    return list(session.scalars(query))


def systems_of(session: Session, *, candidate_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in candidate_ids}
    if candidate_ids:
        rows = session.execute(
            select(CandidateSystem.candidate_id, CandidateSystem.system)
            .where(CandidateSystem.candidate_id.in_(candidate_ids))
            .order_by(CandidateSystem.system)
        )
        for candidate_id, system in rows:
            out[candidate_id].append(system)
    return out


def add_system(session: Session, *, candidate: Candidate, system: str) -> None:
    """Add a system the candidate does not cover yet (`systems_of` says which it does)."""
    session.add(CandidateSystem(candidate_id=candidate.id, system=system))


def get_candidate(session: Session, *, candidate_id: int, principal: Principal) -> Candidate:
    """The candidate, if it exists and the principal may see it: a candidate that became a
    restricted incident is seen only by those who see the incident."""
    principal.require(Permission.read)
    query = (
        select(Candidate)
        .outerjoin(Incident, Incident.id == Candidate.incident_id)
        .where(
            Candidate.id == candidate_id,
            or_(Candidate.incident_id.is_(None), visible_to(principal)),
        )
    )
    candidate = session.scalar(query)
    if candidate is None:
        raise NotFound(
            f"No candidate {candidate_id} that you can see. `blastwall candidates` lists them."
        )
    return candidate


def list_candidates(
    session: Session,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    system: str | None = None,
    archetype: str | None = None,
    incident_id: int | None = None,
) -> tuple[list[Candidate], str | None]:
    """Candidates the principal may see, newest first."""
    principal.require(Permission.read)
    query = (
        select(Candidate)
        .outerjoin(Incident, Incident.id == Candidate.incident_id)
        .where(or_(Candidate.incident_id.is_(None), visible_to(principal)))
        .order_by(Candidate.id.desc())
    )
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Candidate.id < after[0])
    if status:
        query = query.where(Candidate.status == status)
    if severity:
        query = query.where(Candidate.severity == severity)
    if archetype:
        query = query.where(Candidate.archetype == archetype)
    if incident_id is not None:
        query = query.where(Candidate.incident_id == incident_id)
    if system:
        query = query.where(
            select(CandidateSystem.candidate_id)
            .where(CandidateSystem.candidate_id == Candidate.id, CandidateSystem.system == system)
            .exists()
        )
    return fetch_page(session, query, limit=limit)


def explain(candidate: Candidate) -> str:
    parts = [
        f"{f['factor']} {f['points']:+d} ({f['why']})" for f in candidate.explanation if f["points"]
    ]
    return f"{candidate.severity} from {candidate.severity_points} points: " + (
        "; ".join(parts) or "no factor applies"
    )


def to_out(candidate: Candidate, systems: list[str]) -> CandidateOut:
    fields = (
        "id", "title", "status", "basis", "key", "component", "archetype", "severity",
        "severity_points", "explanation", "incident_id", "signal_count", "group_count",
        "top_signal_severity", "first_signal_at", "last_signal_at", "created_at",
        "updated_at", "decided_by", "decided_at", "decision_reason", "reasons",
        "escalated_at", "escalated_to",
    )  # fmt: skip
    data: dict[str, Any] = {f: getattr(candidate, f) for f in fields}
    return CandidateOut.model_validate(
        {
            **data,
            "systems": systems,
            "severity_explanation": explain(candidate),
            "evidence": Evidence.of(candidate.evidence),
            "affected": Affected(
                conversations=len(candidate.conversations),
                users=len(candidate.users),
                reported=candidate.reported_affected,
            ),
        }
    )


def describe(session: Session, candidates: list[Candidate]) -> list[CandidateOut]:
    systems = systems_of(session, candidate_ids=[c.id for c in candidates])
    return [to_out(c, systems.get(c.id, [])) for c in candidates]
