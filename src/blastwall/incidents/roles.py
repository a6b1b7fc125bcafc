"""The roles of an incident (commander, scribe, ...): who holds each, on the timeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.incidents.models import RoleAssignment
from blastwall.incidents.schemas import RoleAssign
from blastwall.incidents.service import add_participants, get_incident, write_entry

__all__ = ["assign_role", "list_roles"]


def assign_role(
    session: Session, *, incident_id: int, assignment: RoleAssign, actor: Principal
) -> RoleAssignment:
    actor.require(Permission.assign_roles)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    row = session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.incident_id == incident.id, RoleAssignment.role == assignment.role
        )
    )
    before = row.assignee if row else None
    now = utcnow()
    if row is None:
        row = RoleAssignment(incident_id=incident.id, role=assignment.role)
        session.add(row)
    row.assignee = assignment.assignee
    row.assigned_by = actor.name
    row.assigned_at = now
    verb = f"reassigned from {before}" if before else "assigned"
    write_entry(
        session,
        incident,
        kind="role_assigned",
        actor=actor,
        text=f"{assignment.role.value} {verb} to {assignment.assignee}",
        data={"role": assignment.role.value, "before": before, "after": assignment.assignee},
    )
    add_participants(
        session,
        incident=incident,
        names=[assignment.assignee],
        actor=actor,
        why=f" ({assignment.role.value})",
    )
    incident.updated_at = now
    session.flush()
    return row


def list_roles(session: Session, *, incident_id: int, principal: Principal) -> list[RoleAssignment]:
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    query = select(RoleAssignment).where(RoleAssignment.incident_id == incident.id)
    return list(session.scalars(query.order_by(RoleAssignment.role)))
