"""Incidents: opening, reading and changing one, who takes part, and who may see it.

Every change writes its own timeline entry (`incidents.timeline`) in the same transaction,
so nothing changes without the record of who did it and when. Roles live in
`incidents.roles`, tasks in `incidents.tasks`; what a change does beyond the incident itself
(a status change, containment, evidence) in `incidents.flows`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select, true
from sqlalchemy.orm import Session

from blastwall.auth import principals
from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, NotFound, PermissionDenied, Problem
from blastwall.incidents.lifecycle import Milestone, Status
from blastwall.incidents.models import Incident, IncidentSystem, Participant, TimelineEntry
from blastwall.incidents.schemas import (
    Durations,
    IncidentCreate,
    IncidentOut,
    IncidentUpdate,
    Milestones,
    Visibility,
)
from blastwall.inventory.service import existing_system_ids
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.pipeline import IncidentChanged

__all__ = [
    "ENDED",
    "active_incident",
    "add_participants",
    "create_incident",
    "describe",
    "durations",
    "get_incident",
    "link_systems",
    "list_incidents",
    "participants_of",
    "record_entry",
    "stamp",
    "systems_of",
    "to_out",
    "unstamp",
    "update_incident",
    "visible",
    "visible_to",
    "write_entry",
]


def _check_systems(session: Session, systems: list[str], field: str) -> list[str]:
    wanted = list(dict.fromkeys(systems))
    known = existing_system_ids(session, ids=wanted)
    missing = [s for s in wanted if s not in known]
    if missing:
        raise InvalidInput(
            "The incident names AI systems that are not in the inventory.",
            [
                Problem(f"body.{field}", f"unknown system '{s}'; see GET /api/v1/systems")
                for s in missing
            ],
        )
    return wanted


def write_entry(
    session: Session,
    incident: Incident,
    *,
    kind: str,
    actor: Principal,
    text: str = "",
    data: dict[str, Any] | None = None,
    ref_id: int | None = None,
    at: datetime | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident.id,
        kind=kind,
        text=text,
        data=data or {},
        ref_id=ref_id,
        actor=actor.name,
        at=at or utcnow(),
    )
    session.add(entry)
    return entry


def record_entry(
    session: Session,
    *,
    incident: Incident,
    kind: str,
    actor: Principal,
    text: str = "",
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Append an entry written by Blastwall itself or for another domain's change
    (correlation, containment, evidence, playbooks) to the incident's timeline, inside the
    caller's transaction: the caller commits it with the change."""
    entry = write_entry(session, incident, kind=kind, actor=actor, text=text, data=data)
    incident.updated_at = entry.at
    session.flush()
    return entry


def _add_participant(session: Session, incident_id: int, name: str) -> bool:
    if session.get(Participant, (incident_id, name)) is not None:
        return False
    session.add(Participant(incident_id=incident_id, principal=name, added_at=utcnow()))
    return True


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """A filter on incidents: open ones, and restricted ones the principal takes part in."""
    if principal.can(Permission.see_restricted):
        return true()
    participates = exists().where(
        Participant.incident_id == Incident.id, Participant.principal == principal.name
    )
    return or_(Incident.visibility == Visibility.open, participates)


def create_incident(session: Session, *, data: IncidentCreate, actor: Principal) -> Incident:
    """Open an incident with its `created` timeline entry (the boundary commits).
    `incidents.flows.open_incident` also collects the evidence behind its signals."""
    actor.require(Permission.write_incidents)
    systems = _check_systems(session, data.systems, "systems")
    now = utcnow()
    incident = Incident(
        title=data.title,
        summary=data.summary,
        archetype=data.archetype,
        severity=data.severity,
        severity_reason=data.severity_reason,
        status=Status.triage,
        visibility=data.visibility,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        detected_at=data.detected_at or now,
    )
    session.add(incident)
    session.flush()
    session.add_all(IncidentSystem(incident_id=incident.id, system_id=s) for s in systems)
    missing = principals.unknown(session, [n for n in data.participants if n != actor.name])
    if missing:
        raise InvalidInput(
            "Participants must be principals.",
            [
                Problem(
                    "body.participants",
                    f"no active token is named {', '.join(repr(m) for m in missing)}: "
                    "`blastwall token list` shows the names (people at the server's command "
                    "line are 'cli:<user>'); create the token first",
                )
            ],
        )
    participants = list(dict.fromkeys([actor.name, *data.participants]))
    for name in participants:
        _add_participant(session, incident.id, name)
    write_entry(
        session,
        incident,
        kind="created",
        actor=actor,
        text=f"Incident opened: {data.title}",
        data={
            "severity": data.severity.value,
            "archetype": data.archetype.value,
            "systems": systems,
            "visibility": data.visibility.value,
            "participants": participants,
        },
    )
    session.flush()
    return incident


def link_systems(session: Session, *, incident: Incident, system_ids: list[str]) -> list[str]:
    """Add inventory systems to an incident; answer those that were not on it yet."""
    current = set(systems_of(session, incident_ids=[incident.id]).get(incident.id, []))
    known = existing_system_ids(session, ids=system_ids)
    added = [s for s in dict.fromkeys(system_ids) if s in known and s not in current]
    session.add_all(IncidentSystem(incident_id=incident.id, system_id=s) for s in added)
    return added


ENDED = frozenset({Status.resolved, Status.closed, Status.declined})


def active_incident(session: Session, *, incident_id: int) -> Incident | None:
    """The incident that carries on `incident_id` (itself, or the one it was merged into),
    while it is not resolved, closed or declined; None otherwise."""
    incident = session.get(Incident, incident_id)
    for _ in range(20):  # merges form a chain; it is never this long
        if incident is None or incident.merged_into_id is None:
            break
        incident = session.get(Incident, incident.merged_into_id)
    if incident is None or incident.status in ENDED or incident.status == Status.merged:
        return None
    return incident


def visible(session: Session, *, incident_id: int, principal: Principal) -> bool:
    """Whether the incident exists and the principal may see it."""
    query = select(Incident.id).where(Incident.id == incident_id, visible_to(principal))
    return session.scalar(query) is not None


def get_incident(session: Session, *, incident_id: int, principal: Principal) -> Incident:
    """The incident, if it exists and the principal may see it; NotFound otherwise (a
    restricted incident's existence is not disclosed)."""
    incident = session.scalar(
        select(Incident).where(Incident.id == incident_id, visible_to(principal))
    )
    if incident is None:
        raise NotFound(
            f"No incident {incident_id} that you can see. "
            "`blastwall incident list` shows the ones you can."
        )
    return incident


def list_incidents(
    session: Session,
    *,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    archetype: str | None = None,
    system_id: str | None = None,
    participant: str | None = None,
) -> tuple[list[Incident], str | None]:
    """Visible incidents, newest first; with `participant`, only those the principal of
    that name takes part in."""
    query = select(Incident).where(visible_to(principal)).order_by(Incident.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Incident.id < after[0])
    if status:
        query = query.where(Incident.status == status)
    if severity:
        query = query.where(Incident.severity == severity)
    if archetype:
        query = query.where(Incident.archetype == archetype)
    if system_id:
        query = query.where(
            exists().where(
                IncidentSystem.incident_id == Incident.id, IncidentSystem.system_id == system_id
            )
        )
    if participant:
        query = query.where(
            exists().where(
                Participant.incident_id == Incident.id, Participant.principal == participant
            )
        )
    return fetch_page(session, query, limit=limit)


def systems_of(session: Session, *, incident_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if incident_ids:
        query = (
            select(IncidentSystem.incident_id, IncidentSystem.system_id)
            .where(IncidentSystem.incident_id.in_(incident_ids))
            .order_by(IncidentSystem.system_id)
        )
        for incident_id, system_id in session.execute(query):
            out[incident_id].append(system_id)
    return out


def to_out(incident: Incident, systems: list[str]) -> IncidentOut:
    return IncidentOut.model_validate(
        {
            **{
                c: getattr(incident, c)
                for c in (
                    "id",
                    "title",
                    "summary",
                    "archetype",
                    "severity",
                    "severity_reason",
                    "status",
                    "visibility",
                    "created_by",
                    "created_at",
                    "updated_at",
                )
            },
            "systems": systems,
            "merged_into": incident.merged_into_id,
            "milestones": Milestones(
                detected=incident.detected_at,
                acknowledged=incident.acknowledged_at,
                contained=incident.contained_at,
                mitigated=incident.mitigated_at,
                resolved=incident.resolved_at,
                closed=incident.closed_at,
            ),
            "durations": durations(incident),
        }
    )


def durations(incident: Incident) -> Durations:
    """Seconds from detection to each milestone reached: time to acknowledge, contain,
    mitigate and resolve."""

    def since_detected(at: datetime | None) -> float | None:
        return None if at is None else (at - incident.detected_at).total_seconds()

    return Durations(
        to_acknowledge=since_detected(incident.acknowledged_at),
        to_contain=since_detected(incident.contained_at),
        to_mitigate=since_detected(incident.mitigated_at),
        to_resolve=since_detected(incident.resolved_at),
    )


def participants_of(session: Session, *, incident_id: int) -> list[str]:
    query = select(Participant.principal).where(Participant.incident_id == incident_id)
    return sorted(session.scalars(query))


def _names(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


def _shown(value: Any, limit: int = 120) -> str:
    text = "none" if value is None or value == "" else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(session: Session, incidents: list[Incident]) -> list[IncidentOut]:
    systems = systems_of(session, incident_ids=[i.id for i in incidents])
    return [to_out(i, systems.get(i.id, [])) for i in incidents]


def update_incident(
    session: Session, *, incident_id: int, data: IncidentUpdate, actor: Principal
) -> Incident:
    """Change the incident's fields, systems and participants; each change is a timeline
    entry saying what it was before and after, and who changed it."""
    actor.require(Permission.write_incidents)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    if data.visibility is not None and data.visibility.value != incident.visibility:
        actor.require(Permission.decide_incidents)
    now = utcnow()
    changes = data.model_dump(exclude_unset=True, exclude={"systems", "add_participants"})
    for field, value in changes.items():
        if value is None:
            continue
        value = getattr(value, "value", value)
        before = getattr(incident, field)
        if before != value:
            setattr(incident, field, value)
            text = f"{field.replace('_', ' ')}: {_shown(before)} → {_shown(value)}"
            if field == "severity" and data.severity_reason:
                text += f" ({_shown(data.severity_reason, 300)})"
            write_entry(
                session,
                incident,
                kind="field_changed",
                actor=actor,
                text=text,
                data={"field": field, "before": before, "after": value},
                at=now,
            )
    if data.systems is not None:
        wanted = _check_systems(session, data.systems, "systems")
        current = systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
        if sorted(wanted) != current:
            session.execute(delete(IncidentSystem).where(IncidentSystem.incident_id == incident.id))
            session.add_all(IncidentSystem(incident_id=incident.id, system_id=s) for s in wanted)
            write_entry(
                session,
                incident,
                kind="field_changed",
                actor=actor,
                text=f"systems: {_names(current)} → {_names(sorted(wanted))}",
                data={"field": "systems", "before": current, "after": sorted(wanted)},
                at=now,
            )
    add_participants(session, incident=incident, names=data.add_participants, actor=actor)
    incident.updated_at = now
    session.flush()
    return incident


def add_participants(
    session: Session, *, incident: Incident, names: Iterable[str], actor: Principal, why: str = ""
) -> list[str]:
    """Add people to the incident; one timeline entry per person added, with the
    participants before and after (the caller commits). Answers those added. Each must be a
    principal (an active token's name, or `cli:<user>`); widening a restricted incident's
    circle needs a commander, legal or an admin."""
    names = list(dict.fromkeys(names))
    before = participants_of(session, incident_id=incident.id)
    new = [n for n in names if n not in before]
    if (
        new
        and incident.visibility == Visibility.restricted
        and not (actor.can(Permission.decide_incidents) or actor.can(Permission.see_restricted))
    ):
        raise PermissionDenied(
            f"Incident {incident.id} is restricted: adding people to it widens who may see "
            "it, which needs a commander, legal or an admin."
        )
    missing = principals.unknown(session, new)
    if missing:
        raise InvalidInput(
            "Participants must be principals.",
            [
                Problem(
                    "body.add_participants",
                    f"no active token is named {', '.join(repr(m) for m in missing)}: "
                    "`blastwall token list` shows the names (people at the server's command "
                    "line are 'cli:<user>'); create the token first",
                )
            ],
        )
    added: list[str] = []
    for name in dict.fromkeys(names):
        if not _add_participant(session, incident.id, name):
            continue
        after = sorted([*before, name])
        write_entry(
            session,
            incident,
            kind="participant_added",
            actor=actor,
            text=f"{name} added as participant{why}: {_names(before)} → {_names(after)}",
            data={"participant": name, "before": before, "after": after},
        )
        before = after
        added.append(name)
    return added


def stamp(incident: Incident, milestones: Iterable[Milestone], at: datetime) -> list[str]:
    """Set the milestones not set yet; answers those set."""
    stamped = []
    for milestone in milestones:
        if getattr(incident, f"{milestone.value}_at") is None:
            setattr(incident, f"{milestone.value}_at", at)
            stamped.append(milestone.value)
    return stamped


def unstamp(incident: Incident, milestones: Iterable[Milestone]) -> list[str]:
    """Clear the milestones that are set; answers those cleared."""
    gone = []
    for milestone in milestones:
        if getattr(incident, f"{milestone.value}_at") is not None:
            setattr(incident, f"{milestone.value}_at", None)
            gone.append(milestone.value)
    return gone


def change_event(
    session: Session,
    incident: Incident,
    *,
    change: str,
    actor: Principal,
    detail: str,
    at: datetime | None = None,
) -> IncidentChanged:
    """The pipeline's event for a change of `incident` (`pipeline.IncidentChanged` lists
    the changes); the caller, a flow, publishes it."""
    systems = systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
    return IncidentChanged(
        incident_id=incident.id,
        change=change,
        at=at or utcnow(),
        actor=actor.name,
        severity=getattr(incident.severity, "value", str(incident.severity)),
        restricted=incident.visibility == Visibility.restricted,
        system_ids=tuple(systems),
        detail=detail[:500],
    )
