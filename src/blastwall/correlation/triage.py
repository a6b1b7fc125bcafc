"""Triage of incident candidates by people: accept (an incident from it), decline (with a
reason, its signals snoozed), merge (into an existing incident). Each decision is recorded
on the candidate and on the incident's timeline, in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal
from blastwall.correlation import service
from blastwall.correlation.models import Candidate
from blastwall.correlation.policy import Policy
from blastwall.correlation.schemas import (
    Accept,
    CandidateStatus,
    Decline,
    Match,
    Merge,
    SnoozeCreate,
)
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, Problem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.incidents.schemas import IncidentCreate
from blastwall.inventory.service import existing_system_ids
from blastwall.pipeline import EvidenceWanted, IncidentFactsChanged
from blastwall.signals.models import Signal

__all__ = ["accept", "decide", "decline", "escalate", "incident_from", "merge"]

log = logging.getLogger("blastwall.correlation")
TRIAGE = frozenset({CandidateStatus.pending, CandidateStatus.declined})


def incident_from(
    session: Session, candidate: Candidate, *, actor: Principal, data: Accept, now: datetime
) -> Incident:
    """Open the candidate's incident, keeping its signals (the caller records the decision
    and commits)."""
    archetype = data.archetype or candidate.archetype
    if archetype is None:
        raise InvalidInput(
            f"Candidate {candidate.id} has no archetype; say which it is.",
            [Problem("body.archetype", "give one of the incident archetypes")],
        )
    session.flush()  # the systems the candidate took just now
    systems = service.systems_of(session, candidate_ids=[candidate.id])[candidate.id]
    registered = sorted(existing_system_ids(session, ids=systems))
    incident = incidents.create_incident(
        session,
        data=IncidentCreate(
            title=data.title or candidate.title,
            summary=f"From candidate {candidate.id}: {candidate.signal_count} signal(s) in "
            f"{candidate.group_count} group(s) on {', '.join(systems) or 'no named system'}.",
            archetype=archetype,
            severity=data.severity or candidate.severity,
            severity_reason=service.explain(candidate),
            systems=registered,
            visibility=data.visibility,
            detected_at=candidate.first_signal_at,
        ),
        actor=actor,
    )
    candidate.incident_id = incident.id
    candidate.updated_at = now
    collect_evidence(session, incident_id=incident.id, candidate_id=candidate.id, actor=actor)
    detail = (
        f"Opened as {incident.severity} ({incident.archetype}) from candidate {candidate.id} "
        f"({candidate.signal_count} signal(s)) by {actor.name}."
    )
    event = incidents.change_event(
        session, incident, change="opened", actor=actor, detail=detail, at=incident.created_at
    )
    pipeline.publish(session, event)
    pipeline.publish(
        session,
        IncidentFactsChanged(
            incident_id=incident.id, actor=actor, why=f"opened from candidate {candidate.id}"
        ),
    )
    return incident


EVIDENCE_PER_SIGNAL = 5
"""Interactions of each signal collected as evidence by correlation; `blastwall evidence
collect` takes the rest."""
EVIDENCE_PER_INCIDENT = 200


def evidence_ids(signals: Sequence[tuple[int, list[int] | None]]) -> list[int]:
    """The interactions correlation collects for these (signal id, interaction ids): the
    first few of each signal, at most EVIDENCE_PER_INCIDENT in all."""
    ids: list[int] = []
    for _, interactions in signals:
        ids.extend(i for i in (interactions or [])[:EVIDENCE_PER_SIGNAL] if isinstance(i, int))
    return list(dict.fromkeys(ids))[:EVIDENCE_PER_INCIDENT]


def collect_evidence(
    session: Session, *, incident_id: int, candidate_id: int, actor: Principal
) -> None:
    """Preserve the interactions behind the candidate's signals as the incident's evidence
    (the first few of each signal)."""
    session.flush()
    rows = session.execute(
        select(Signal.id, Signal.interaction_ids).where(Signal.candidate_id == candidate_id)
    ).all()
    ids = evidence_ids([(row_id, interactions) for row_id, interactions in rows])
    if ids:
        pipeline.publish(
            session,
            EvidenceWanted(
                incident_id=incident_id,
                actor=actor,
                interaction_ids=tuple(ids),
                why=f"behind the signals of candidate {candidate_id}",
            ),
        )


def decide(candidate: Candidate, status: CandidateStatus, actor: Principal, now: datetime) -> None:
    """Record a decision on the candidate: its new status, who and when."""
    candidate.status = status
    candidate.decided_by = actor.name
    candidate.decided_at = candidate.updated_at = now


def escalate(candidate: Candidate, *, owner: str, whose: str, started: int, now: datetime) -> None:
    """Record that a pending candidate, still growing below the threshold, is escalated to
    its triage owner: on the candidate (`escalated_at`, `escalated_to`, an `escalated`
    reason) and in the log (WARNING). Blastwall sends no notification yet: a person or a
    log-based alert has to pick this up."""
    minutes = (now - candidate.first_signal_at).total_seconds() / 60
    why = (
        f"still growing after {minutes:.0f} min below the threshold: {candidate.severity} "
        f"({candidate.severity_points} points, from {started} when it started; "
        f"{candidate.signal_count} signal(s)); escalated to {owner} ({whose})"
    )
    candidate.escalated_at = now
    candidate.escalated_to = owner
    candidate.reasons = [
        *(candidate.reasons or []),
        {
            "kind": "escalated",
            "to": owner,
            "at": now.isoformat(),
            "severity": candidate.severity,
            "points": candidate.severity_points,
            "why": why,
        },
    ]
    log.warning("candidate %s escalated to %s: %s: %s", candidate.id, owner, candidate.title, why)


# --- triage ---------------------------------------------------------------------------------


def _waiting(session: Session, candidate_id: int, actor: Principal, verb: str) -> Candidate:
    actor.require(Permission.write_incidents)
    candidate = service.get_candidate(session, candidate_id=candidate_id, principal=actor)
    if candidate.status not in TRIAGE:
        raise Conflict(
            f"Candidate {candidate.id} is {candidate.status}"
            + (f" (incident {candidate.incident_id})" if candidate.incident_id else "")
            + f"; only pending or declined candidates can be {verb}."
        )
    if candidate.status == CandidateStatus.declined:
        # taken up after all: its signals are no longer snoozed
        service.end_snoozes_of(session, candidate_id=candidate.id, actor=actor)
    return candidate


def accept(session: Session, *, candidate_id: int, data: Accept, actor: Principal) -> Candidate:
    """Turn a candidate into an incident; its signals stay with it and later ones follow."""
    candidate = _waiting(session, candidate_id, actor, "accepted")
    now = utcnow()
    incident = incident_from(session, candidate, actor=actor, data=data, now=now)
    decide(candidate, CandidateStatus.accepted, actor, now)
    incidents.record_entry(
        session,
        incident=incident,
        kind="candidate_accepted",
        text=f"Candidate {candidate.id} accepted by {actor.name}: {candidate.signal_count} "
        f"signal(s). Policy: {service.explain(candidate)}",
        data={"candidate": candidate.id, "factors": candidate.explanation},
        actor=actor,
    )
    session.flush()
    return candidate


def decline(
    session: Session,
    *,
    candidate_id: int,
    data: Decline,
    actor: Principal,
    policy: Policy,
) -> Candidate:
    """Record that a candidate is no incident, and why; by default its signals are snoozed
    for the `decline_snooze` of the policy in force (`policy`), with the same reason."""
    actor.require(Permission.write_incidents)
    candidate = service.get_candidate(session, candidate_id=candidate_id, principal=actor)
    if candidate.status != CandidateStatus.pending:
        raise Conflict(
            f"Candidate {candidate.id} is {candidate.status}"
            + (f" (incident {candidate.incident_id})" if candidate.incident_id else "")
            + "; only pending candidates can be declined."
        )
    now = utcnow()
    decide(candidate, CandidateStatus.declined, actor, now)
    candidate.decision_reason = data.reason
    if data.snooze:
        until = now + policy.grouping.decline_snooze
        groups, _ = service.list_groups(
            session, principal=actor, candidate_id=candidate.id, limit=100
        )
        # A recurrence is a group of its own with the same fingerprint: one snooze each.
        for fingerprint in dict.fromkeys(g.fingerprint for g in groups):
            service.add_snooze(
                session,
                data=SnoozeCreate(
                    match=Match(fingerprint=fingerprint),
                    reason=f"candidate {candidate.id} declined: {data.reason}"[:2000],
                    until=until,
                ),
                actor=actor,
                now=now,
                candidate_id=candidate.id,
            )
    session.flush()
    return candidate


def merge(session: Session, *, candidate_id: int, data: Merge, actor: Principal) -> Candidate:
    """Add a candidate's signals to an existing incident, which takes its later ones too."""
    candidate = _waiting(session, candidate_id, actor, "merged")
    target = incidents.get_incident(session, incident_id=data.incident_id, principal=actor)
    if incidents.active_incident(session, incident_id=target.id) is not target:
        raise Conflict(
            f"Incident {target.id} is {target.status}; merge into an incident that is "
            "still being worked on."
        )
    candidate.incident_id = target.id
    collect_evidence(session, incident_id=target.id, candidate_id=candidate.id, actor=actor)
    decide(candidate, CandidateStatus.merged, actor, utcnow())
    systems = service.systems_of(session, candidate_ids=[candidate.id])[candidate.id]
    added = incidents.link_systems(session, incident=target, system_ids=systems)
    incidents.record_entry(
        session,
        incident=target,
        kind="candidate_merged",
        text=f"Candidate {candidate.id} merged in by {actor.name}: {candidate.signal_count} "
        f"signal(s) on {', '.join(systems) or 'no named system'}.",
        data={"candidate": candidate.id, "systems_added": added},
        actor=actor,
    )
    session.flush()
    return candidate
