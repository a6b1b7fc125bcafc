"""Incident routes: lifecycle, roles, timeline and tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from blastwall.dependencies import (
    IncidentId,
    ItemId,
    PageDep,
    PrincipalDep,
    SessionDep,
    audit_object,
)
from blastwall.incidents import flows, service
from blastwall.incidents import roles as role_service
from blastwall.incidents import tasks as task_service
from blastwall.incidents import timeline as timeline_service
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.models import Incident, RoleAssignment, Task, TimelineEntry
from blastwall.incidents.schemas import (
    Archetype,
    EntryCreate,
    EntryOut,
    IncidentCreate,
    IncidentOut,
    IncidentUpdate,
    RoleAssign,
    RoleOut,
    Severity,
    StatusChange,
    TaskCreate,
    TaskOut,
    TaskState,
    TaskUpdate,
    VerdictIn,
)
from blastwall.pagination import Page

router = APIRouter(prefix="/incidents", tags=["incidents"])


def _one(session: SessionDep, incident: Incident) -> IncidentOut:
    return service.describe(session, [incident])[0]


def _entry(row: TimelineEntry, state: str | None = None) -> EntryOut:
    out = EntryOut.model_validate(row, from_attributes=True)
    out.hypothesis_state = state
    return out


def _role(row: RoleAssignment) -> RoleOut:
    return RoleOut.model_validate(row, from_attributes=True)


def _task(row: Task) -> TaskOut:
    return TaskOut.model_validate(row, from_attributes=True)


@router.get("", response_model=Page[IncidentOut])
def list_incidents(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    status: Annotated[Status | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    archetype: Annotated[Archetype | None, Query()] = None,
    system: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[IncidentOut]:
    """Incidents the caller may see, newest first. Restricted ones appear only to their
    participants, legal and admins."""
    rows, next_cursor = service.list_incidents(
        session,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        status=status.value if status else None,
        severity=severity.value if severity else None,
        archetype=archetype.value if archetype else None,
        system_id=system,
    )
    return Page(items=service.describe(session, rows), next=next_cursor)


@router.post("", response_model=IncidentOut, status_code=201)
def create_incident(
    request: Request, body: IncidentCreate, session: SessionDep, principal: PrincipalDep
) -> IncidentOut:
    incident = flows.open_incident(session, data=body, actor=principal)
    audit_object(request, f"incident:{incident.id}")
    return _one(session, incident)


@router.get("/{incident_id}", response_model=IncidentOut)
def get_incident(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> IncidentOut:
    return _one(
        session, service.get_incident(session, incident_id=incident_id, principal=principal)
    )


@router.patch("/{incident_id}", response_model=IncidentOut)
def update_incident(
    incident_id: IncidentId, body: IncidentUpdate, session: SessionDep, principal: PrincipalDep
) -> IncidentOut:
    incident = flows.update_incident(session, incident_id=incident_id, data=body, actor=principal)
    return _one(session, incident)


@router.post("/{incident_id}/status", response_model=IncidentOut)
def change_status(
    incident_id: IncidentId, body: StatusChange, session: SessionDep, principal: PrincipalDep
) -> IncidentOut:
    """Move the incident through its lifecycle; 409 names the allowed statuses."""
    incident = flows.change_status(session, incident_id=incident_id, change=body, actor=principal)
    return _one(session, incident)


@router.get("/{incident_id}/roles", response_model=Page[RoleOut])
def list_roles(
    incident_id: IncidentId, session: SessionDep, principal: PrincipalDep
) -> Page[RoleOut]:
    """The current holder of each assigned role (at most five: one page)."""
    rows = role_service.list_roles(session, incident_id=incident_id, principal=principal)
    return Page(items=[_role(r) for r in rows], next=None)


@router.post("/{incident_id}/roles", response_model=RoleOut)
def assign_role(
    incident_id: IncidentId, body: RoleAssign, session: SessionDep, principal: PrincipalDep
) -> RoleOut:
    """Assign or reassign one incident role; the person becomes a participant."""
    row = role_service.assign_role(
        session, incident_id=incident_id, assignment=body, actor=principal
    )
    return _role(row)


@router.get("/{incident_id}/timeline", response_model=Page[EntryOut])
def list_timeline(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[EntryOut]:
    """The incident's history, oldest first."""
    rows, states, next_cursor = timeline_service.list_timeline(
        session,
        incident_id=incident_id,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        kind=kind,
    )
    return Page(items=[_entry(r, states.get(r.id)) for r in rows], next=next_cursor)


@router.post("/{incident_id}/timeline", response_model=EntryOut, status_code=201)
def add_entry(
    request: Request,
    incident_id: IncidentId,
    body: EntryCreate,
    session: SessionDep,
    principal: PrincipalDep,
) -> EntryOut:
    """Add a note, fact, hypothesis, decision or action."""
    row = timeline_service.add_entry(session, incident_id=incident_id, entry=body, actor=principal)
    audit_object(request, f"incident:{incident_id}/timeline:{row.id}")
    return _entry(row, "open" if row.kind == "hypothesis" else None)


@router.post("/{incident_id}/timeline/{entry_id}/verdict", response_model=EntryOut, status_code=201)
def judge_hypothesis(
    incident_id: IncidentId,
    entry_id: ItemId,
    body: VerdictIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> EntryOut:
    """Mark a hypothesis confirmed or refuted. The hypothesis stays; the verdict is a new entry."""
    row = timeline_service.judge_hypothesis(
        session, incident_id=incident_id, entry_id=entry_id, verdict=body, actor=principal
    )
    return _entry(row)


@router.get("/{incident_id}/tasks", response_model=Page[TaskOut])
def list_tasks(
    incident_id: IncidentId,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    state: Annotated[TaskState | None, Query()] = None,
) -> Page[TaskOut]:
    """Tasks and action items, oldest first."""
    rows, next_cursor = task_service.list_tasks(
        session,
        incident_id=incident_id,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        state=state.value if state else None,
    )
    return Page(items=[_task(r) for r in rows], next=next_cursor)


@router.post("/{incident_id}/tasks", response_model=TaskOut, status_code=201)
def create_task(
    request: Request,
    incident_id: IncidentId,
    body: TaskCreate,
    session: SessionDep,
    principal: PrincipalDep,
) -> TaskOut:
    row = task_service.create_task(session, incident_id=incident_id, task=body, actor=principal)
    audit_object(request, f"incident:{incident_id}/task:{row.id}")
    return _task(row)


@router.patch("/{incident_id}/tasks/{task_id}", response_model=TaskOut)
def update_task(
    incident_id: IncidentId,
    task_id: ItemId,
    body: TaskUpdate,
    session: SessionDep,
    principal: PrincipalDep,
) -> TaskOut:
    row = task_service.update_task(
        session, incident_id=incident_id, task_id=task_id, update=body, actor=principal
    )
    return _task(row)
