"""Tasks and post-incident action items of an incident: every change on its timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import NotFound
from blastwall.incidents.models import Task
from blastwall.incidents.schemas import TaskCreate, TaskUpdate
from blastwall.incidents.service import get_incident, record_entry
from blastwall.pagination import decode_cursor, fetch_page

__all__ = ["create_task", "list_tasks", "update_task"]


def create_task(session: Session, *, incident_id: int, task: TaskCreate, actor: Principal) -> Task:
    actor.require(Permission.write_incidents)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    now = utcnow()
    row = Task(
        incident_id=incident.id,
        kind=task.kind,
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
    record_entry(
        session,
        incident=incident,
        kind="task_created",
        actor=actor,
        text=f"{task.kind.value.replace('_', ' ')} #{row.id}: {task.title}",
        data={
            "task": row.id,
            "owner": task.owner,
            "due": task.due.isoformat() if task.due else None,
        },
    )
    session.flush()
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
        record_entry(
            session,
            incident=incident,
            kind="task_updated",
            actor=actor,
            text=f"task #{row.id} updated: {', '.join(changed)}",
            data={"task": row.id, "changes": changed},
        )
        session.flush()
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
