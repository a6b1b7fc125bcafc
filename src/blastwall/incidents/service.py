"""The only way into incident storage: lifecycle, roles, timeline, tasks and visibility.

Every change writes its own timeline entry in the same transaction, so nothing changes
without the record of who did it and when.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_, select, true
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Problem
from blastwall.incidents.lifecycle import DECISIONS, Status, check_transition
from blastwall.incidents.models import (
    Incident,
    IncidentSystem,
    Participant,
    RoleAssignment,
    Task,
    TimelineEntry,
)
from blastwall.incidents.schemas import (
    EntryCreate,
    EntryKind,
    IncidentCreate,
    IncidentOut,
    IncidentUpdate,
    Milestones,
    RoleAssign,
    StatusChange,
    TaskCreate,
    TaskUpdate,
    VerdictIn,
    Visibility,
)
from blastwall.inventory.service import existing_system_ids
from blastwall.pagination import decode_cursor, fetch_page


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


def _log(
    session: Session,
    incident: Incident,
    *,
    kind: str,
    actor: Principal,
    text: str = "",
    data: dict[str, Any] | None = None,
    ref_id: int | None = None,
) -> TimelineEntry:
    entry = TimelineEntry(
        incident_id=incident.id,
        kind=kind,
        text=text,
        data=data or {},
        ref_id=ref_id,
        actor=actor.name,
        at=utcnow(),
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
    entry = _log(session, incident, kind=kind, actor=actor, text=text, data=data)
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
    return or_(Incident.visibility == Visibility.open.value, participates)


def create_incident(session: Session, *, data: IncidentCreate, actor: Principal) -> Incident:
    """Open an incident; the interactions behind the signals it names are collected into the
    evidence vault in the same transaction."""
    from blastwall.evidence.flows import collect_for_incident

    incident = add_incident(session, data=data, actor=actor)
    collect_for_incident(session, incident_id=incident.id, signal_ids=data.signals, actor=actor)
    session.commit()
    return incident


def add_incident(session: Session, *, data: IncidentCreate, actor: Principal) -> Incident:
    """Open an incident with its `created` timeline entry, in the caller's transaction (the
    caller commits)."""
    actor.require(Permission.write_incidents)
    systems = _check_systems(session, data.systems, "systems")
    now = utcnow()
    incident = Incident(
        title=data.title,
        summary=data.summary,
        archetype=data.archetype.value,
        severity=data.severity.value,
        severity_reason=data.severity_reason,
        status=Status.triage.value,
        visibility=data.visibility.value,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        detected_at=data.detected_at or now,
    )
    session.add(incident)
    session.flush()
    session.add_all(IncidentSystem(incident_id=incident.id, system_id=s) for s in systems)
    for name in dict.fromkeys([actor.name, *data.participants]):
        _add_participant(session, incident.id, name)
    _log(
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


ENDED = frozenset({Status.resolved.value, Status.closed.value, Status.declined.value})


def active_incident(session: Session, *, incident_id: int) -> Incident | None:
    """The incident that carries on `incident_id` (itself, or the one it was merged into),
    while it is not resolved, closed or declined; None otherwise."""
    incident = session.get(Incident, incident_id)
    for _ in range(20):  # merges form a chain; it is never this long
        if incident is None or incident.merged_into_id is None:
            break
        incident = session.get(Incident, incident.merged_into_id)
    if incident is None or incident.status in ENDED or incident.status == Status.merged.value:
        return None
    return incident


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
) -> tuple[list[Incident], str | None]:
    """Visible incidents, newest first."""
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
                resolved=incident.resolved_at,
                closed=incident.closed_at,
            ),
        }
    )


def describe(session: Session, incidents: list[Incident]) -> list[IncidentOut]:
    systems = systems_of(session, incident_ids=[i.id for i in incidents])
    return [to_out(i, systems.get(i.id, [])) for i in incidents]


def update_incident(
    session: Session, *, incident_id: int, data: IncidentUpdate, actor: Principal
) -> Incident:
    actor.require(Permission.write_incidents)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    if data.visibility is not None and data.visibility.value != incident.visibility:
        actor.require(Permission.decide_incidents)
    changes = data.model_dump(exclude_unset=True, exclude={"systems", "add_participants"})
    for field, value in changes.items():
        if value is None:
            continue
        value = getattr(value, "value", value)
        before = getattr(incident, field)
        if before != value:
            setattr(incident, field, value)
            _log(
                session,
                incident,
                kind="field_changed",
                actor=actor,
                text=f"{field} changed",
                data={"field": field, "before": before, "after": value},
            )
    if data.systems is not None:
        wanted = _check_systems(session, data.systems, "systems")
        current = systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
        if sorted(wanted) != current:
            session.execute(delete(IncidentSystem).where(IncidentSystem.incident_id == incident.id))
            session.add_all(IncidentSystem(incident_id=incident.id, system_id=s) for s in wanted)
            _log(
                session,
                incident,
                kind="field_changed",
                actor=actor,
                text="systems changed",
                data={"field": "systems", "before": current, "after": sorted(wanted)},
            )
    for name in data.add_participants:
        if _add_participant(session, incident.id, name):
            _log(
                session,
                incident,
                kind="participant_added",
                actor=actor,
                text=f"{name} added as participant",
                data={"participant": name},
            )
    incident.updated_at = utcnow()
    session.commit()
    return incident


def change_status(
    session: Session, *, incident_id: int, change: StatusChange, actor: Principal
) -> Incident:
    actor.require(Permission.write_incidents)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    current = Status(incident.status)
    milestones = check_transition(current, change.status)
    if change.status in DECISIONS and not actor.can(Permission.decide_incidents):
        raise PermissionDenied(
            f"Moving an incident to '{change.status.value}' is a commander's decision. "
            "Ask someone with the commander or admin role."
        )
    data: dict[str, Any] = {"before": current.value, "after": change.status.value}
    if change.status is Status.merged:
        if change.merged_into is None:
            raise InvalidInput(
                "Merging needs the incident to merge into.",
                [Problem("body.merged_into", "give the id of the surviving incident")],
            )
        if change.merged_into == incident.id:
            raise Conflict("An incident cannot be merged into itself; name another incident.")
        target = get_incident(session, incident_id=change.merged_into, principal=actor)
        if Status(target.status) in (Status.merged, Status.closed, Status.declined):
            raise Conflict(f"Incident {target.id} is {target.status}; merge into an active one.")
        incident.merged_into_id = target.id
        data["merged_into"] = target.id
        _log(
            session,
            target,
            kind="merged_in",
            actor=actor,
            text=f"Incident {incident.id} merged into this one",
            data={"from": incident.id},
        )
    elif change.merged_into is not None:
        raise InvalidInput(
            "merged_into only goes with status 'merged'.",
            [Problem("body.merged_into", "leave it out for this status")],
        )
    now = utcnow()
    for milestone in milestones:
        if getattr(incident, f"{milestone.value}_at") is None:
            setattr(incident, f"{milestone.value}_at", now)
            data.setdefault("milestones", []).append(milestone.value)
    incident.status = change.status.value
    incident.updated_at = now
    _log(
        session,
        incident,
        kind="status_changed",
        actor=actor,
        text=f"Status {current.value} → {change.status.value}"
        + (f": {change.reason}" if change.reason else ""),
        data=data,
    )
    session.commit()
    return incident


def assign_role(
    session: Session, *, incident_id: int, assignment: RoleAssign, actor: Principal
) -> RoleAssignment:
    actor.require(Permission.assign_roles)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    row = session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.incident_id == incident.id, RoleAssignment.role == assignment.role.value
        )
    )
    before = row.assignee if row else None
    now = utcnow()
    if row is None:
        row = RoleAssignment(incident_id=incident.id, role=assignment.role.value)
        session.add(row)
    row.assignee = assignment.assignee
    row.assigned_by = actor.name
    row.assigned_at = now
    _add_participant(session, incident.id, assignment.assignee)
    verb = "reassigned" if before else "assigned"
    _log(
        session,
        incident,
        kind="role_assigned",
        actor=actor,
        text=f"{assignment.role.value} {verb} to {assignment.assignee}",
        data={"role": assignment.role.value, "before": before, "after": assignment.assignee},
    )
    incident.updated_at = now
    session.commit()
    return row


def list_roles(session: Session, *, incident_id: int, principal: Principal) -> list[RoleAssignment]:
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    query = select(RoleAssignment).where(RoleAssignment.incident_id == incident.id)
    return list(session.scalars(query.order_by(RoleAssignment.role)))


def add_entry(
    session: Session, *, incident_id: int, entry: EntryCreate, actor: Principal
) -> TimelineEntry:
    actor.require(Permission.write_timeline)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    row = _log(session, incident, kind=entry.kind.value, actor=actor, text=entry.text)
    session.commit()
    return row


def judge_hypothesis(
    session: Session, *, incident_id: int, entry_id: int, verdict: VerdictIn, actor: Principal
) -> TimelineEntry:
    """Mark a hypothesis confirmed or refuted by appending a verdict entry that refers to it."""
    actor.require(Permission.write_timeline)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    target = session.get(TimelineEntry, entry_id)
    if target is None or target.incident_id != incident.id:
        raise NotFound(f"Incident {incident.id} has no timeline entry {entry_id}.")
    if target.kind != EntryKind.hypothesis.value:
        raise Conflict(
            f"Entry {entry_id} is a {target.kind}, not a hypothesis; only hypotheses "
            "are confirmed or refuted."
        )
    row = _log(
        session,
        incident,
        kind=f"hypothesis_{verdict.verdict.value}",
        actor=actor,
        text=verdict.text or f"Hypothesis {verdict.verdict.value}: {target.text}",
        data={"verdict": verdict.verdict.value},
        ref_id=target.id,
    )
    session.commit()
    return row


def list_timeline(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    kind: str | None = None,
) -> tuple[list[TimelineEntry], dict[int, str], str | None]:
    """Entries oldest first, with the current state of each hypothesis among them."""
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(TimelineEntry.id > after[0])
    if kind:
        query = query.where(TimelineEntry.kind == kind)
    rows, next_cursor = fetch_page(session, query.order_by(TimelineEntry.id), limit=limit)
    states = {r.id: "open" for r in rows if r.kind == EntryKind.hypothesis.value}
    if states:
        verdicts = session.execute(
            select(TimelineEntry.ref_id, TimelineEntry.kind)
            .where(TimelineEntry.ref_id.in_(states))
            .order_by(TimelineEntry.id)
        )
        for ref_id, verdict_kind in verdicts:
            if ref_id is not None:
                states[ref_id] = verdict_kind.removeprefix("hypothesis_")
    return rows, states, next_cursor


def create_task(session: Session, *, incident_id: int, task: TaskCreate, actor: Principal) -> Task:
    actor.require(Permission.write_incidents)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    now = utcnow()
    row = Task(
        incident_id=incident.id,
        kind=task.kind.value,
        title=task.title,
        owner=task.owner,
        due=task.due,
        state="open",
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _log(
        session,
        incident,
        kind="task_created",
        actor=actor,
        text=f"{task.kind.value.replace('_', ' ')} #{row.id}: {task.title}",
        data={
            "task": row.id,
            "owner": task.owner,
            "due": task.due.isoformat() if task.due else None,
        },
    )
    session.commit()
    return row


def update_task(
    session: Session, *, incident_id: int, task_id: int, update: TaskUpdate, actor: Principal
) -> Task:
    actor.require(Permission.write_incidents)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    row = session.get(Task, task_id)
    if row is None or row.incident_id != incident.id:
        raise NotFound(f"Incident {incident.id} has no task {task_id}.")
    changed: dict[str, Any] = {}
    for field, value in update.model_dump(exclude_unset=True).items():
        value = getattr(value, "value", value)
        if getattr(row, field) != value:
            before = getattr(row, field)
            changed[field] = {
                "before": str(before) if before is not None else None,
                "after": str(value) if value is not None else None,
            }
            setattr(row, field, value)
    if changed:
        row.updated_at = utcnow()
        _log(
            session,
            incident,
            kind="task_updated",
            actor=actor,
            text=f"task #{row.id} updated: {', '.join(changed)}",
            data={"task": row.id, "changes": changed},
        )
        session.commit()
    return row


def list_tasks(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    limit: int = 500,
    cursor: str | None = None,
    state: str | None = None,
) -> tuple[list[Task], str | None]:
    """Tasks oldest first."""
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    query = select(Task).where(Task.incident_id == incident.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Task.id > after[0])
    if state:
        query = query.where(Task.state == state)
    return fetch_page(session, query.order_by(Task.id), limit=limit)
