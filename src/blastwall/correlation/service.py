"""The only way into correlation storage: signal groups, candidates and noise rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.correlation.models import Candidate, CandidateSystem, NoiseRule, SignalGroup
from blastwall.correlation.schemas import (
    Affected,
    CandidateOut,
    Evidence,
    MaintenanceCreate,
    NoiseRuleOut,
    SnoozeCreate,
)
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, Problem
from blastwall.incidents.models import Incident
from blastwall.incidents.service import visible_to
from blastwall.inventory.models import System, SystemComponent
from blastwall.inventory.schemas import SystemSpec
from blastwall.inventory.service import existing_system_ids
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.signals.models import Signal

# --- locks ----------------------------------------------------------------------------------


def lock(session: Session, keys: list[str]) -> None:
    """On PostgreSQL, serialise concurrent transactions that correlate the same fingerprints
    or candidate keys until commit (SQLite serialises writers already). Locks are taken in
    sorted order: no deadlocks between correlations."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        digest = hashlib.sha256(f"correlation:{key}".encode()).digest()
        number = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})


# --- inventory facts -----------------------------------------------------------------------


@dataclass(frozen=True)
class SystemFacts:
    """What correlation needs to know of an inventory system."""

    id: str
    risk_tier: str
    high_risk: bool
    spec: SystemSpec
    components: frozenset[tuple[str, str]]


class InventoryFacts:
    """The inventory as correlation reads it, kept between calls and read again when the
    systems change (the database, their count or their latest update). A refresh swaps the
    whole mapping, so concurrent readers see one version or the other."""

    def __init__(self) -> None:
        self._version: tuple[Any, ...] | None = None
        self._facts: dict[str, SystemFacts | None] = {}

    def refresh(self, session: Session) -> None:
        counted = session.execute(select(func.count(System.id), func.max(System.updated_at)))
        version = (str(session.connection().engine.url), *counted.one())
        if version != self._version:
            self._facts, self._version = {}, version

    def get(self, session: Session, system_id: str) -> SystemFacts | None:
        facts = self._facts
        if system_id not in facts:
            row = session.get(System, system_id)
            found = None
            if row is not None:
                components = session.execute(
                    select(SystemComponent.kind, SystemComponent.key).where(
                        SystemComponent.system_id == system_id
                    )
                )
                found = SystemFacts(
                    id=row.id,
                    risk_tier=row.risk_tier,
                    high_risk=row.eu_ai_act_high_risk,
                    spec=row.parsed,
                    components=frozenset((kind, key) for kind, key in components),
                )
            facts[system_id] = found
        return facts[system_id]


INVENTORY = InventoryFacts()


# --- groups ---------------------------------------------------------------------------------


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


# --- candidates -----------------------------------------------------------------------------


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


# --- noise rules ----------------------------------------------------------------------------


def active_rules(session: Session, *, now: datetime) -> list[NoiseRule]:
    query = select(NoiseRule).where(
        NoiseRule.ended_at.is_(None), NoiseRule.starts_at <= now, NoiseRule.ends_at > now
    )
    return list(session.scalars(query.order_by(NoiseRule.id)))


def add_snooze(
    session: Session,
    *,
    data: SnoozeCreate,
    actor: Principal,
    now: datetime | None = None,
    candidate_id: int | None = None,
) -> NoiseRule:
    """Hold back the signals that match until the snooze expires (the caller commits)."""
    actor.require(Permission.write_incidents)
    now = now or utcnow()
    if data.until <= now:
        raise InvalidInput(
            "The snooze would expire before it starts.",
            [Problem("body.until", "give a time in the future")],
        )
    rule = NoiseRule(
        kind="snooze",
        match=data.match.model_dump(mode="json", exclude_none=True),
        reason=data.reason,
        starts_at=now,
        ends_at=data.until,
        candidate_id=candidate_id,
        created_by=actor.name,
        created_at=now,
    )
    session.add(rule)
    session.flush()
    return rule


def add_maintenance(session: Session, *, data: MaintenanceCreate, actor: Principal) -> NoiseRule:
    """Hold back a system's signals during a maintenance window (the caller commits)."""
    actor.require(Permission.record_changes)
    if not existing_system_ids(session, ids=[data.system]):
        raise InvalidInput(
            "Maintenance windows are for inventory systems.",
            [Problem("body.system", f"unknown system '{data.system}'; see GET /api/v1/systems")],
        )
    rule = NoiseRule(
        kind="maintenance",
        system_id=data.system,
        match={"system": data.system},
        reason=data.reason,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(rule)
    session.flush()
    return rule


def end_snoozes_of(session: Session, *, candidate_id: int, actor: Principal) -> list[int]:
    """End the snoozes a candidate's decline made (it is accepted or merged after all)."""
    now = utcnow()
    rules = session.scalars(
        select(NoiseRule).where(
            NoiseRule.candidate_id == candidate_id,
            NoiseRule.ended_at.is_(None),
            NoiseRule.ends_at > now,
        )
    )
    ended = []
    for rule in rules:
        rule.ended_at, rule.ended_by = now, actor.name
        ended.append(rule.id)
    return ended


def end_rule(session: Session, *, rule_id: int, actor: Principal) -> NoiseRule:
    """End a snooze or a maintenance window now (the caller commits)."""
    actor.require(Permission.write_incidents)
    rule = session.get(NoiseRule, rule_id)
    if rule is None:
        raise NotFound(f"No noise rule {rule_id}. `blastwall noise list` shows them.")
    if rule.ended_at is not None:
        raise Conflict(f"Noise rule {rule_id} was ended already, by {rule.ended_by}.")
    rule.ended_at = utcnow()
    rule.ended_by = actor.name
    return rule


def list_rules(
    session: Session,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    active: bool | None = None,
    kind: str | None = None,
) -> tuple[list[NoiseRule], str | None]:
    """Snoozes and maintenance windows, newest first."""
    principal.require(Permission.read)
    query = select(NoiseRule).order_by(NoiseRule.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(NoiseRule.id < after[0])
    if kind:
        query = query.where(NoiseRule.kind == kind)
    now = utcnow()
    in_force = (NoiseRule.ended_at.is_(None), NoiseRule.starts_at <= now, NoiseRule.ends_at > now)
    if active is True:
        query = query.where(*in_force)
    elif active is False:
        query = query.where(
            or_(
                NoiseRule.ended_at.is_not(None), NoiseRule.starts_at > now, NoiseRule.ends_at <= now
            )
        )
    return fetch_page(session, query, limit=limit)


def held_signals(
    session: Session, *, principal: Principal, rule_id: int, limit: int, cursor: str | None = None
) -> tuple[list[Signal], str | None]:
    """The signals a snooze or maintenance window held back, newest first."""
    principal.require(Permission.read)
    rule = session.get(NoiseRule, rule_id)
    if rule is None:
        raise NotFound(f"No noise rule {rule_id}. `blastwall noise list` shows them.")
    query = select(Signal).where(Signal.held_by == f"{rule.kind}:{rule.id}")
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Signal.id < after[0])
    return fetch_page(session, query.order_by(Signal.id.desc()), limit=limit)


def rule_out(rule: NoiseRule, now: datetime | None = None) -> NoiseRuleOut:
    now = now or utcnow()
    active = rule.ended_at is None and rule.starts_at <= now < rule.ends_at
    return NoiseRuleOut.model_validate(
        {
            **{c: getattr(rule, c) for c in NoiseRuleOut.model_fields if c != "active"},
            "active": active,
        }
    )
