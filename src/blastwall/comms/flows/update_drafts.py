"""A status update's draft, filled from the incident itself: confirmed facts and the impact
so far from the timeline and what the incident touched, open hypotheses, containment with
its verification, open tasks; and the names from the inventory that redaction hides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.comms.audiences import AudiencePolicy
from blastwall.comms.models.updates import ComponentStatus, Impact, Phase, StatusUpdate
from blastwall.comms.redaction import Names
from blastwall.comms.service import updates as service
from blastwall.containment import service as containment
from blastwall.containment.affected import find_affected
from blastwall.db import utcnow
from blastwall.incidents import tasks, timeline
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.models import Incident
from blastwall.inventory import service as inventory
from blastwall.inventory.service import component_keys

__all__ = ["fill", "inventory_names", "open_hypotheses"]

_PHASES = {
    Status.triage: Phase.investigating,
    Status.investigating: Phase.investigating,
    Status.contained: Phase.identified,
    Status.recovering: Phase.monitoring,
    Status.resolved: Phase.resolved,
    Status.closed: Phase.resolved,
}
_IMPACTS = {"SEV1": Impact.critical, "SEV2": Impact.major, "SEV3": Impact.minor}
_COMPONENTS = {
    "SEV1": ComponentStatus.major_outage,
    "SEV2": ComponentStatus.partial_outage,
    "SEV3": ComponentStatus.degraded_performance,
}
_TIMELINE_PAGES = 50


@dataclass
class _Known:
    """What the timeline says: confirmed facts and open hypotheses."""

    facts: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)


def _timeline(session: Session, incident: Incident, principal: Principal) -> _Known:
    known = _Known()
    cursor: str | None = None
    for _ in range(_TIMELINE_PAGES):
        rows, states, cursor = timeline.list_timeline(
            session, incident_id=incident.id, principal=principal, limit=500, cursor=cursor
        )
        for row in rows:
            state = states.get(row.id)
            if row.kind == "fact" or (row.kind == "hypothesis" and state == "confirmed"):
                known.facts.append(row.text)
            elif row.kind == "hypothesis" and states.get(row.id) == "open":
                known.hypotheses.append(row.text)
        if cursor is None:
            break
    return known


def open_hypotheses(session: Session, *, incident: Incident, principal: Principal) -> list[str]:
    return _timeline(session, incident, principal).hypotheses


def inventory_names(session: Session) -> Names:
    """The names from the inventory that some audiences may not see."""
    internal: set[str] = set()
    models: set[str] = set()
    cursor: str | None = None
    while True:
        systems, cursor = inventory.list_systems(session, limit=500, cursor=cursor)
        for system in systems:
            internal.add(system.id)
            spec = system.parsed
            models.update(m.name for m in spec.components.models)
            models.update(m.id for m in spec.components.models if getattr(m, "id", None))
            for kind, key in component_keys(spec):
                if kind in ("model", "model_provider"):
                    models.add(key)
                elif kind in ("tool", "data_source"):
                    internal.add(key)
                elif kind == "prompt":
                    internal.add(key.split("@", 1)[0])
        if cursor is None:
            break
    return Names(internal=tuple(sorted(internal)), models=tuple(sorted(models)))


def _actions(session: Session, incident: Incident) -> list[str]:
    rows, _ = containment.list_actions(session, incident_id=incident.id, limit=500)
    lines = []
    for row in rows:
        if row.state.value == "rejected":
            continue
        verified = {
            "verified": "verified",
            "breached": "breached: the behaviour goes on",
            "pending": "being verified",
        }.get(row.verification or "", "not verified")
        lines.append(f"Containment: {row.describe()} ({row.state.value}, {verified})")
    return lines


def _tasks(session: Session, incident: Incident, principal: Principal) -> list[str]:
    rows, _ = tasks.list_tasks(session, incident_id=incident.id, principal=principal)
    return [
        f"Task: {t.title} ({t.state.value}{f', {t.owner}' if t.owner else ''})"
        for t in rows
        if t.state.value in ("open", "in_progress")
    ]


def _impact(session: Session, incident: Incident, principal: Principal) -> list[str]:
    """The impact figures, for those who may read what the incident touched."""
    if not principal.can(Permission.see_content):
        return []
    affected = find_affected(session, incident_id=incident.id, principal=principal)
    if not affected.interactions:
        return []
    return [
        f"Impact so far: {len(affected.conversations)} conversations, "
        f"{len(affected.users)} users, {len(affected.side_effects)} tool side effects"
    ]


def fill(
    session: Session,
    *,
    incident: Incident,
    audience: str,
    actor: Principal,
    policy: AudiencePolicy,
    now: datetime | None = None,
) -> StatusUpdate:
    """A draft to `audience` filled from the incident: confirmed facts and the impact so far
    (what happened), open hypotheses (what we are testing), containment with its
    verification and open tasks (what we are doing), the next update after the cadence."""
    now = now or utcnow()
    known = _timeline(session, incident, actor)
    interval = policy.cadence.interval(incident.severity.value, audience)
    phase = _PHASES.get(incident.status, Phase.investigating)
    return service.create_update(
        session,
        incident_id=incident.id,
        audience=audience,
        title=incident.title,
        sections={
            "what_happened": [*known.facts, *_impact(session, incident, actor)],
            "what_we_are_testing": known.hypotheses,
            "what_we_are_doing": [*_actions(session, incident), *_tasks(session, incident, actor)],
            "what_we_dont_know": [],
        },
        next_update_at=now + interval if interval and phase != Phase.resolved else None,
        phase=phase,
        impact=Impact.none
        if phase == Phase.resolved
        else _IMPACTS.get(incident.severity.value, Impact.minor),
        component_status=ComponentStatus.operational
        if phase == Phase.resolved
        else _COMPONENTS.get(incident.severity.value, ComponentStatus.degraded_performance),
        author=actor.name,
        now=now,
    )
