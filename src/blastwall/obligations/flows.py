"""Obligations across domains: judging an incident's candidates when what they depend on
changes, the anchors and facts people set, legal's decisions, submissions with the filed
document kept as evidence, and the reminders as clocks run down.

    incident facts changed (pipeline) → evaluate → candidates raised, on the timeline
    decide (legal, admin) → confirmed / not applicable, with a reason
    record_submission → the filed document into the evidence vault, the clock stopped
    tick → ReminderDue at 50, 75 and 90 % of a clock, and overdue
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal, Role
from blastwall.db import utcnow
from blastwall.errors import Conflict
from blastwall.evidence.flows import add_file
from blastwall.evidence.store import Vault
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.incidents.roles import list_roles
from blastwall.incidents.schemas import IncidentRole
from blastwall.inventory import service as inventory
from blastwall.inventory.schemas import Sensitivity
from blastwall.obligations import service
from blastwall.obligations.judging import Moments, clocks, judge
from blastwall.obligations.models import Obligation
from blastwall.obligations.profile import OrganisationSpec
from blastwall.obligations.rules import Anchor, Rule, SubmissionKind, in_force
from blastwall.obligations.schemas import (
    AnchorIn,
    AnchorOut,
    DecisionIn,
    FactsIn,
    ObligationOut,
    ObligationStatus,
    SubmissionOut,
)
from blastwall.pipeline import IncidentFactsChanged, ReminderDue

__all__ = [
    "anchors",
    "decide",
    "describe",
    "evaluate",
    "facts_changed",
    "moments",
    "record_submission",
    "set_anchor",
    "set_facts",
    "tick",
]

SYSTEM = Principal(name="blastwall", role=Role.admin)


def _system_attributes(session: Session, incident_id: int) -> dict[str, dict[str, Any]]:
    ids = incidents.systems_of(session, incident_ids=[incident_id]).get(incident_id, [])
    found = {}
    for system_id in ids:
        row = inventory.get_system(session, system_id=system_id)
        spec = row.parsed
        found[system_id] = {
            "eu_ai_act_high_risk": row.eu_ai_act_high_risk,
            "risk_tier": row.risk_tier.value,
            "type": row.type.value,
            "personal_data": any(
                d.sensitivity is Sensitivity.personal for d in spec.components.data_sources
            ),
        }
    return found


def anchors(session: Session, incident: Incident) -> dict[str, AnchorOut]:
    """The incident's clock anchors; awareness defaults to when it was detected."""
    rows = service.anchors_of(session, incident_id=incident.id)
    found = {k.value: AnchorOut.model_validate(r) for k, r in rows.items()}
    if Anchor.awareness.value not in found:
        found[Anchor.awareness.value] = AnchorOut(
            kind=Anchor.awareness.value,
            at=incident.detected_at,
            set_by=incident.created_by,
            set_at=incident.created_at,
            reason="when the incident was detected (the default)",
            default=True,
        )
    return found


def _awareness(session: Session, incident: Incident) -> datetime:
    return anchors(session, incident)[Anchor.awareness.value].at


def evaluate(session: Session, *, incident: Incident, actor: Principal, why: str) -> int:
    """Judge the rules in force at the incident's awareness against its facts, systems and
    the organisation's roles: a new match is a candidate, on the timeline; a candidate
    that no longer matches is marked so. Answer how many obligations changed."""
    current = service.current_profile(session)
    known = service.obligations_of(session, incident_id=incident.id)
    if current is None and not known:
        return 0
    profile = current[1] if current else None
    rules = service.rules_of(profile)
    at = _awareness(session, incident)
    live = {r.id: r for r in in_force([rule for rule, _ in rules.values()], at)}
    facts = {
        name: (row.value, row.state.value)
        for name, row in service.facts_of(session, incident_id=incident.id).items()
    }
    systems = _system_attributes(session, incident.id)
    roles = profile.roles() if profile else set()
    now, changed, matched = utcnow(), 0, set()
    for rule_id, rule in live.items():
        reasons = judge(rule, facts=facts, systems=systems, roles=roles)
        if reasons is None:
            continue
        matched.add(rule_id)
        row, change = service.record_match(
            session,
            incident_id=incident.id,
            rule=rule,
            version=rules[rule_id][1],
            why=reasons,
            now=now,
        )
        if change in ("raised", "matches again"):
            changed += 1
            incidents.record_entry(
                session,
                incident=incident,
                kind="obligation_raised",
                actor=actor,
                text=f"Obligation {row.id} {change}: {rule.regime} {rule.article}, "
                f"{rule.title} ({why})",
                data={"obligation_id": row.id, "rule_id": rule.id, "why": reasons},
            )
    gone = [o for o in known if o.rule_id not in matched and o.status is ObligationStatus.candidate]
    for row in service.unmatch(session, obligations=gone, now=now):
        changed += 1
        incidents.record_entry(
            session,
            incident=incident,
            kind="obligation_unmatched",
            actor=actor,
            text=f"Obligation {row.id} ({row.regime}, rule {row.rule_id}) no longer matches "
            f"the incident ({why}); it stays listed until legal decides",
            data={"obligation_id": row.id, "rule_id": row.rule_id},
        )
    return changed


def facts_changed(session: Session, event: IncidentFactsChanged) -> int:
    """The pipeline's step: judge the incident's obligations again."""
    incident = session.get(Incident, event.incident_id)
    if incident is None:
        return 0
    return evaluate(session, incident=incident, actor=event.actor, why=event.why)


def set_facts(session: Session, *, incident_id: int, body: FactsIn, actor: Principal) -> int:
    """Record facts the rules are judged on, each on the timeline; judge again."""
    actor.require(Permission.write_timeline)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    now, changes = utcnow(), []
    for fact in body.facts:
        row, before = service.set_fact(
            session, incident_id=incident.id, fact=fact, actor=actor.name, at=now
        )
        after = {"value": row.value, "state": row.state.value}
        if before != after:
            changes.append({"name": fact.name, "before": before, **after})
    if not changes:
        return 0
    text = "; ".join(f"{c['name']} = {c['value']!r} ({c['state']})" for c in changes)
    incidents.record_entry(
        session,
        incident=incident,
        kind="fact",
        actor=actor,
        text=f"Facts for obligations: {text}" + (f". {body.note}" if body.note else ""),
        data={"obligation_facts": changes},
    )
    names = ", ".join(c["name"] for c in changes)
    pipeline.publish(
        session,
        IncidentFactsChanged(incident_id=incident.id, actor=actor, why=f"facts set: {names}"),
    )
    return len(changes)


def set_anchor(
    session: Session, *, incident_id: int, kind: Anchor, body: AnchorIn, actor: Principal
) -> AnchorOut:
    """Set when a clock starts; a change moves the clocks, and is on the timeline with its
    time before and after and its reason."""
    actor.require(Permission.write_timeline)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    before = anchors(session, incident).get(kind.value)
    row, _ = service.set_anchor(
        session,
        incident_id=incident.id,
        kind=kind,
        at=body.at,
        reason=body.reason,
        actor=actor.name,
    )
    was = f" (was {before.at.isoformat()})" if before is not None else ""
    incidents.record_entry(
        session,
        incident=incident,
        kind="fact",
        actor=actor,
        text=f"Clock anchor {kind.value}: {row.at.isoformat()}{was}: {body.reason}",
        data={
            "anchor": kind.value,
            "at": row.at.isoformat(),
            "before": before.at.isoformat() if before is not None else None,
        },
    )
    pipeline.publish(
        session,
        IncidentFactsChanged(incident_id=incident.id, actor=actor, why=f"anchor {kind.value} set"),
    )
    return AnchorOut.model_validate(row)


def moments(session: Session, incident: Incident, obligation: Obligation) -> Moments:
    sent: dict[SubmissionKind, list[datetime]] = {}
    rows = service.submissions_of(session, obligation_ids=[obligation.id])[obligation.id]
    for row in sorted(rows, key=lambda r: r.submitted_at):
        sent.setdefault(row.kind, []).append(row.submitted_at)
    return Moments({k: a.at for k, a in anchors(session, incident).items()}, sent)


def _rule(obligation: Obligation, profile: OrganisationSpec | None) -> Rule:
    rules = service.rules_of(profile)
    if obligation.rule_id not in rules:
        raise Conflict(
            f"Obligation {obligation.id} follows rule '{obligation.rule_id}', which is no longer "
            "shipped nor in the organisation profile; restore the rule to see its clocks."
        )
    return rules[obligation.rule_id][0]


def _out(
    session: Session, incident: Incident, row: Obligation, profile: OrganisationSpec | None
) -> ObligationOut:
    rule = _rule(row, profile)
    sent = service.submissions_of(session, obligation_ids=[row.id])[row.id]
    return ObligationOut(
        id=row.id,
        incident_id=row.incident_id,
        rule_id=row.rule_id,
        regime=row.regime,
        title=rule.title,
        article=rule.article,
        link=rule.link,
        pack_version=row.pack_version,
        status=row.status,
        matches=row.matches,
        why=row.why,
        rule_out=rule.rule_out,
        verify=rule.verify,
        preliminary_allowed=rule.preliminary_allowed,
        clocks=clocks(rule, moments=moments(session, incident, row), profile=profile, now=utcnow()),
        submissions=[SubmissionOut.model_validate(s) for s in sent],
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        reason=row.reason,
    )


def describe(
    session: Session, *, incident_id: int, principal: Principal, obligation_id: int | None = None
) -> list[ObligationOut]:
    """The incident's obligations with their clocks (one, given `obligation_id`)."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    current = service.current_profile(session)
    profile = current[1] if current else None
    if obligation_id is not None:
        rows = [
            service.get_obligation(session, incident_id=incident.id, obligation_id=obligation_id)
        ]
    else:
        rows = service.obligations_of(session, incident_id=incident.id)
    return [_out(session, incident, row, profile) for row in rows]


def decide(
    session: Session, *, incident_id: int, obligation_id: int, body: DecisionIn, actor: Principal
) -> ObligationOut:
    """Legal's decision (or an admin's): confirmed, or not applicable, with a reason."""
    actor.require(Permission.decide_obligations)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    row = service.get_obligation(session, incident_id=incident.id, obligation_id=obligation_id)
    before = row.status
    service.decide(
        session, obligation=row, decision=body.decision, reason=body.reason, actor=actor.name
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="obligation_decided",
        actor=actor,
        text=f"Obligation {row.id} ({row.regime}, rule {row.rule_id}) "
        f"{body.decision.value.replace('_', ' ')}: {body.reason}",
        data={"obligation_id": row.id, "before": before.value, "after": row.status.value},
    )
    return describe(session, incident_id=incident.id, principal=actor, obligation_id=row.id)[0]


def record_submission(
    session: Session,
    *,
    incident_id: int,
    obligation_id: int,
    kind: SubmissionKind,
    submitted_at: datetime,
    reference: str,
    note: str,
    document: tuple[bytes, str, str] | None,
    actor: Principal,
    vault: Vault,
) -> ObligationOut:
    """Record a report filed for a confirmed obligation; `document` (bytes, name, media
    type), the filed document, is kept as the incident's evidence."""
    actor.require(Permission.decide_obligations)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    row = service.get_obligation(session, incident_id=incident.id, obligation_id=obligation_id)
    if row.status is not ObligationStatus.confirmed:
        raise Conflict(
            f"Obligation {row.id} is {row.status.value.replace('_', ' ')}: only a confirmed "
            "obligation has submissions. Confirm it first (POST .../decision)."
        )
    item_id = None
    if document is not None:
        data, name, media = document
        item = add_file(
            session,
            incident_id=incident.id,
            data=data,
            name=name,
            media_type=media,
            note=f"{kind.value} submission for obligation {row.id} ({row.regime}), "
            f"reference {reference or 'none'}",
            actor=actor,
            vault=vault,
            permission=Permission.decide_obligations,
        )
        item_id = item.id
    sent = service.add_submission(
        session,
        obligation=row,
        kind=kind,
        submitted_at=submitted_at,
        reference=reference,
        evidence_item_id=item_id,
        note=note,
        actor=actor.name,
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="obligation_submitted",
        actor=actor,
        text=f"Obligation {row.id} ({row.regime}): {kind.value} submission at "
        f"{submitted_at.isoformat()}, reference {reference or 'none'}"
        + (f", document kept as evidence item {item_id}" if item_id else ""),
        data={"obligation_id": row.id, "submission_id": sent.id, "evidence_item_id": item_id},
    )
    return describe(session, incident_id=incident.id, principal=actor, obligation_id=row.id)[0]


LEVELS = ((0.5, "clock_50"), (0.75, "clock_75"), (0.9, "clock_90"), (1.0, "overdue"))


def _recipient(session: Session, incident: Incident) -> str:
    """The incident's legal liaison, else its commander, else who opened it."""
    found = {
        r.role: r.assignee for r in list_roles(session, incident_id=incident.id, principal=SYSTEM)
    }
    return (
        found.get(IncidentRole.legal_liaison)
        or found.get(IncidentRole.incident_commander)
        or incident.created_by
    )


def tick(session: Session, now: datetime) -> int:
    """Publish a `ReminderDue` for every clock of an open obligation that passed 50, 75 or
    90 % of its time, or its deadline, and was not reminded of at that level yet; each
    reminder is recorded by its key. Answer how many were published."""
    current = service.current_profile(session)
    profile = current[1] if current else None
    channels = tuple(profile.reminder_channels) if profile else ()
    published = 0
    for row in service.open_obligations(session):
        incident = session.get(Incident, row.incident_id)
        if incident is None or incident.status.value in incidents.ENDED:
            continue
        try:
            rule = _rule(row, profile)
        except Conflict:
            continue
        found = moments(session, incident, row)
        for index, clock in enumerate(clocks(rule, moments=found, profile=profile, now=now)):
            if clock.due is None or clock.started_at is None or clock.submitted_at is not None:
                continue
            start = clock.started_at
            span = (clock.due.at - start).total_seconds()
            for share, level in LEVELS:
                point = start + (clock.due.at - start) * share if span > 0 else clock.due.at
                if now < point:
                    break
                key = f"obligation:{row.id}:clock:{index}:{clock.due.at.isoformat()}:{level}"
                if service.fired(session, key=key):
                    continue
                service.record_reminder(
                    session,
                    key=key,
                    obligation_id=row.id,
                    level=level,
                    due_at=clock.due.at,
                    now=now,
                )
                pipeline.publish(
                    session,
                    ReminderDue(
                        incident_id=incident.id,
                        audience="legal",
                        channels=channels,
                        level=level,
                        recipient=_recipient(session, incident),
                        due_at=clock.due.at,
                        key=key,
                        restricted=incident.visibility.value == "restricted",
                    ),
                )
                published += 1
    return published
