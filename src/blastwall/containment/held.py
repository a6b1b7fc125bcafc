"""Outputs held for review: while `quarantine_output` is in force on a system, its guard
refuses to release outputs and sends each one here; a person reviews it and releases it
(the application may deliver it) or discards it. Both are on the incident's timeline; the
timeline names the output by number and length, never by its text."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal, Role
from blastwall.containment import service
from blastwall.containment.models import ContainmentAction, HeldOutput
from blastwall.containment.policy import Policy
from blastwall.db import utcnow
from blastwall.errors import Conflict, NotFound, PermissionDenied
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.inventory.schemas import Control
from blastwall.inventory.service import get_system
from blastwall.pagination import decode_cursor, encode_cursor
from blastwall.telemetry.redact import redact_text

__all__ = ["HeldDecision", "HeldIn", "HeldOut", "decide", "hold", "list_held", "to_out"]

_CONTROL_PLANE = Principal(name="blastwall", role=Role.admin)
MAX_TEXT = 200_000


class HeldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)]
    conversation_id: Annotated[str, StringConstraints(max_length=200)] | None = None


class HeldDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: bool = Field(description="true: the output may be delivered; false: discard it.")
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class HeldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    system_id: str
    action_id: int
    incident_id: int
    text: str | None = Field(
        description="Masked of personal data for roles that do not see content."
    )
    conversation_id: str | None
    state: str = Field(description="held, released or discarded")
    held_by: str
    held_at: str
    decided_by: str | None
    decided_at: str | None
    note: str | None


def to_out(row: HeldOutput, incident_id: int, *, full: bool) -> HeldOut:
    return HeldOut(
        id=row.id,
        system_id=row.system_id,
        action_id=row.action_id,
        incident_id=incident_id,
        text=row.text if full else redact_text(row.text),
        conversation_id=row.conversation_id,
        state=row.state,
        held_by=row.held_by,
        held_at=row.held_at.isoformat(),
        decided_by=row.decided_by,
        decided_at=row.decided_at.isoformat() if row.decided_at else None,
        note=row.note,
    )


def _quarantine(session: Session, system_id: str) -> ContainmentAction | None:
    for action in service.active_actions(session, system_id=system_id):
        if action.control == Control.quarantine_output:
            return action
    return None


def hold(session: Session, *, data: HeldIn, principal: Principal) -> tuple[HeldOutput, int]:
    """Keep an output a guard held back; answers it and the incident it is held under."""
    principal.require(Permission.report)
    get_system(session, system_id=data.system)
    action = _quarantine(session, data.system)
    if action is None:
        raise Conflict(
            f"Outputs of {data.system} are not quarantined now; the guard's state is out of "
            "date. Release the output again against the current state."
        )
    row = HeldOutput(
        system_id=data.system,
        action_id=action.id,
        text=data.text,
        conversation_id=data.conversation_id,
        state="held",
        held_by=principal.name,
        held_at=utcnow(),
    )
    session.add(row)
    session.flush()
    incident = incidents.get_incident(
        session, incident_id=action.incident_id, principal=_CONTROL_PLANE
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="output_held",
        actor=principal,
        text=f"An output of {data.system} ({len(data.text)} characters) is held for review "
        f"as held output {row.id} (`blastwall containment held`).",
        data={"held_output": row.id, "action_id": action.id},
    )
    session.flush()
    return row, action.incident_id


def decide(
    session: Session, *, held_id: int, decision: HeldDecision, actor: Principal, policy: Policy
) -> tuple[HeldOutput, int]:
    """Release or discard a held output (the policy's approvers)."""
    if not policy.may_approve(actor.role):
        raise PermissionDenied(
            f"The role '{actor.role.value}' may not review held outputs. Use a token with one "
            f"of these roles: {', '.join(r.value for r in policy.approvers)}."
        )
    row = session.get(HeldOutput, held_id)
    if row is None:
        raise NotFound(f"No held output {held_id}; `blastwall containment held` lists them.")
    if row.state != "held":
        raise Conflict(f"Held output {row.id} was already {row.state} by {row.decided_by}.")
    action = session.get(ContainmentAction, row.action_id)
    assert action is not None
    row.state = "released" if decision.release else "discarded"
    row.decided_by = actor.name
    row.decided_at = utcnow()
    row.note = decision.note or None
    incident = incidents.get_incident(session, incident_id=action.incident_id, principal=actor)
    incidents.record_entry(
        session,
        incident=incident,
        kind=f"output_{row.state}",
        actor=actor,
        text=f"Held output {row.id} of {row.system_id} {row.state} by {actor.name}"
        + (f": {decision.note}" if decision.note else ""),
        data={"held_output": row.id, "action_id": row.action_id},
    )
    session.flush()
    return row, action.incident_id


def list_held(
    session: Session,
    *,
    limit: int,
    cursor: str | None,
    system_id: str | None,
    state: str | None,
    reader: Principal,
) -> tuple[list[tuple[HeldOutput, int]], str | None]:
    """Held outputs newest first, of the incidents `reader` may see."""
    query = (
        select(HeldOutput, ContainmentAction.incident_id)
        .join(ContainmentAction, ContainmentAction.id == HeldOutput.action_id)
        .join(Incident, Incident.id == ContainmentAction.incident_id)
        .where(incidents.visible_to(reader))
        .order_by(HeldOutput.id.desc())
    )
    if system_id:
        query = query.where(HeldOutput.system_id == system_id)
    if state:
        query = query.where(HeldOutput.state == state)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(HeldOutput.id < after[0])
    rows = [(row, incident_id) for row, incident_id in session.execute(query.limit(limit + 1))]
    following = encode_cursor([rows[limit - 1][0].id]) if len(rows) > limit else None
    return rows[:limit], following
