"""Obligations in storage: the organisation profile, the rules in force, an incident's facts
and clock anchors, its obligations, their decisions and submissions, the reminders fired.
Plain functions over this domain's tables; the boundary commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.db import utcnow
from blastwall.errors import NotFound
from blastwall.obligations.models import (
    ClockAnchor,
    IncidentFact,
    Obligation,
    OrganisationProfile,
    Reminder,
    Submission,
)
from blastwall.obligations.profile import OrganisationSpec
from blastwall.obligations.rules import Anchor, Rule, SubmissionKind, shipped_packs
from blastwall.obligations.schemas import Decision, FactIn, ObligationStatus

__all__ = [
    "add_submission",
    "anchors_of",
    "apply_profile",
    "current_profile",
    "decide",
    "facts_of",
    "fired",
    "get_obligation",
    "obligations_of",
    "open_obligations",
    "record_match",
    "record_reminder",
    "rules_of",
    "serious_incident_obligations",
    "set_anchor",
    "set_fact",
    "submissions_of",
    "unmatch",
]


def current_profile(session: Session) -> tuple[OrganisationProfile, OrganisationSpec] | None:
    row = session.scalars(
        select(OrganisationProfile).order_by(OrganisationProfile.id.desc()).limit(1)
    ).first()
    return (row, OrganisationSpec.model_validate(row.spec)) if row else None


def apply_profile(
    session: Session, *, spec: OrganisationSpec, source: str, actor: str
) -> OrganisationProfile | None:
    """Store the profile as the one in force; None when it equals the one in force."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    current = current_profile(session)
    if current is not None and current[0].spec == data:
        return None
    row = OrganisationProfile(
        spec=data, source=source[:2000], applied_by=actor, applied_at=utcnow()
    )
    session.add(row)
    session.flush()
    return row


def rules_of(profile: OrganisationSpec | None) -> dict[str, tuple[Rule, str]]:
    """Every rule by id with the version of its pack: the shipped ones less those the
    organisation disables, its own rules replacing a shipped one of the same id."""
    rules: dict[str, tuple[Rule, str]] = {}
    for pack in shipped_packs():
        for rule in pack.rules:
            rules.setdefault(rule.id, (rule, f"{pack.pack}@{pack.version}"))
            if rule.effective_from > rules[rule.id][0].effective_from:
                rules[rule.id] = (rule, f"{pack.pack}@{pack.version}")
    if profile is not None:
        for rule in profile.rules:
            regime = rule.regime or "organisation"
            rules[rule.id] = (rule.model_copy(update={"regime": regime}), "organisation")
        for rule_id in profile.disabled_rules:
            rules.pop(rule_id, None)
    return rules


def facts_of(session: Session, *, incident_id: int) -> dict[str, IncidentFact]:
    rows = session.scalars(select(IncidentFact).where(IncidentFact.incident_id == incident_id))
    return {r.name: r for r in rows}


def set_fact(
    session: Session, *, incident_id: int, fact: FactIn, actor: str, at: datetime
) -> tuple[IncidentFact, Any]:
    """Set one fact; answer its row and the value (with state) it had before, or None."""
    row = session.get(IncidentFact, (incident_id, fact.name))
    before = None if row is None else {"value": row.value, "state": row.state.value}
    if row is None:
        row = IncidentFact(incident_id=incident_id, name=fact.name)
        session.add(row)
    row.value, row.state, row.set_by, row.set_at = fact.value, fact.state, actor, at
    session.flush()
    return row, before


def anchors_of(session: Session, *, incident_id: int) -> dict[Anchor, ClockAnchor]:
    rows = session.scalars(select(ClockAnchor).where(ClockAnchor.incident_id == incident_id))
    return {r.kind: r for r in rows}


def set_anchor(
    session: Session,
    *,
    incident_id: int,
    kind: Anchor,
    at: datetime,
    reason: str,
    actor: str,
) -> tuple[ClockAnchor, datetime | None]:
    row = session.get(ClockAnchor, (incident_id, kind))
    before = None if row is None else row.at
    if row is None:
        row = ClockAnchor(incident_id=incident_id, kind=kind)
        session.add(row)
    row.at, row.reason, row.set_by, row.set_at = at, reason, actor, utcnow()
    session.flush()
    return row, before


def obligations_of(session: Session, *, incident_id: int) -> list[Obligation]:
    return list(
        session.scalars(
            select(Obligation).where(Obligation.incident_id == incident_id).order_by(Obligation.id)
        )
    )


def open_obligations(session: Session) -> list[Obligation]:
    """Obligations whose clocks may still run: candidates that match, and confirmed ones."""
    return list(
        session.scalars(
            select(Obligation)
            .where(
                (Obligation.status == ObligationStatus.confirmed)
                | ((Obligation.status == ObligationStatus.candidate) & Obligation.matches)
            )
            .order_by(Obligation.id)
        )
    )


def serious_incident_obligations(session: Session, *, incident_id: int) -> list[Obligation]:
    """The incident's AI Act serious-incident obligations that hold: candidates that match,
    and confirmed ones (the containment gate of Art. 73(6))."""
    current = current_profile(session)
    rules = rules_of(current[1] if current else None)
    return [
        row
        for row in obligations_of(session, incident_id=incident_id)
        if row.rule_id in rules
        and rules[row.rule_id][0].ai_act_serious_incident
        and (
            row.status is ObligationStatus.confirmed
            or (row.status is ObligationStatus.candidate and row.matches)
        )
    ]


def get_obligation(session: Session, *, incident_id: int, obligation_id: int) -> Obligation:
    row = session.get(Obligation, obligation_id)
    if row is None or row.incident_id != incident_id:
        raise NotFound(
            f"Incident {incident_id} has no obligation {obligation_id}; "
            f"see GET /api/v1/incidents/{incident_id}/obligations."
        )
    return row


def record_match(
    session: Session,
    *,
    incident_id: int,
    rule: Rule,
    version: str,
    why: list[dict[str, Any]],
    now: datetime,
) -> tuple[Obligation, str]:
    """Record that `rule` matches: answer the obligation and `raised` (new), `matches
    again`, `why changed` or `unchanged`."""
    row = session.scalars(
        select(Obligation).where(
            Obligation.incident_id == incident_id, Obligation.rule_id == rule.id
        )
    ).first()
    if row is None:
        row = Obligation(
            incident_id=incident_id,
            rule_id=rule.id,
            regime=rule.regime,
            pack_version=version,
            status=ObligationStatus.candidate,
            matches=True,
            why=why,
            raised_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row, "raised"
    change = "unchanged"
    if not row.matches:
        change = "matches again"
    elif row.why != why:
        change = "why changed"
    if change != "unchanged":
        row.matches, row.why, row.pack_version, row.updated_at = True, why, version, now
    return row, change


def unmatch(
    session: Session, *, obligations: Iterable[Obligation], now: datetime
) -> list[Obligation]:
    """Mark obligations whose rule no longer matches; answer those that changed."""
    changed = []
    for row in obligations:
        if row.matches:
            row.matches, row.updated_at = False, now
            changed.append(row)
    session.flush()
    return changed


def decide(
    session: Session, *, obligation: Obligation, decision: Decision, reason: str, actor: str
) -> Obligation:
    now = utcnow()
    obligation.status = ObligationStatus(decision.value)
    obligation.reason, obligation.decided_by, obligation.decided_at = reason, actor, now
    obligation.updated_at = now
    session.flush()
    return obligation


def submissions_of(session: Session, *, obligation_ids: list[int]) -> dict[int, list[Submission]]:
    found: dict[int, list[Submission]] = {i: [] for i in obligation_ids}
    if obligation_ids:
        rows = session.scalars(
            select(Submission)
            .where(Submission.obligation_id.in_(obligation_ids))
            .order_by(Submission.id)
        )
        for row in rows:
            found[row.obligation_id].append(row)
    return found


def add_submission(
    session: Session,
    *,
    obligation: Obligation,
    kind: SubmissionKind,
    submitted_at: datetime,
    reference: str,
    evidence_item_id: int | None,
    note: str,
    actor: str,
) -> Submission:
    row = Submission(
        obligation_id=obligation.id,
        kind=kind,
        submitted_at=submitted_at,
        reference=reference,
        evidence_item_id=evidence_item_id,
        note=note,
        recorded_by=actor,
        recorded_at=utcnow(),
    )
    session.add(row)
    obligation.updated_at = row.recorded_at
    session.flush()
    return row


def fired(session: Session, *, key: str) -> bool:
    return session.get(Reminder, key) is not None


def record_reminder(
    session: Session, *, key: str, obligation_id: int, level: str, due_at: datetime, now: datetime
) -> Reminder:
    row = Reminder(key=key, obligation_id=obligation_id, level=level, due_at=due_at, fired_at=now)
    session.add(row)
    session.flush()
    return row
