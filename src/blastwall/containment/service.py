"""The only way into containment storage: actions, snapshots, control revisions and
quarantined outputs. Orchestration across domains (policy, timeline, connectors) is in
`flows.py`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment.models import (
    ContainmentAction,
    ControlRevision,
    ControlSnapshot,
    QuarantinedOutput,
    ToolApproval,
)
from blastwall.containment.schemas import (
    ActionOut,
    ActionRecord,
    ActionState,
    ControlOut,
    ControlState,
    ToolApprovalOut,
)
from blastwall.db import utcnow
from blastwall.errors import NotFound
from blastwall.incidents.models import Incident
from blastwall.incidents.schemas import Visibility
from blastwall.incidents.service import visible_to
from blastwall.inventory.schemas import Control
from blastwall.inventory.service import get_system
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.telemetry.models import Interaction
from blastwall.telemetry.service import InteractionFilter, list_interactions
from blastwall_guard.names import same_name

SNAPSHOT_FIELDS = (
    "id",
    "trace_id",
    "span_id",
    "start_time",
    "end_time",
    "operation",
    "agent_name",
    "conversation_id",
    "user_id",
    "request_model",
    "response_model",
    "system_instructions_hash",
    "input_messages",
    "output_messages",
    "tool_name",
    "tool_arguments",
    "tool_result",
    "error_type",
    "content_policy",
)


def get_action(session: Session, *, incident_id: int, action_id: int) -> ContainmentAction:
    row = session.get(ContainmentAction, action_id)
    if row is None or row.incident_id != incident_id:
        raise NotFound(
            f"Incident {incident_id} has no containment action {action_id}; "
            f"GET /api/v1/incidents/{incident_id}/actions lists them."
        )
    return row


def list_actions(
    session: Session,
    *,
    incident_id: int,
    limit: int,
    cursor: str | None = None,
    state: str | None = None,
) -> tuple[list[ContainmentAction], str | None]:
    """The incident's actions, oldest first."""
    query = select(ContainmentAction).where(ContainmentAction.incident_id == incident_id)
    if state:
        query = query.where(ContainmentAction.state == state)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(ContainmentAction.id > after[0])
    return fetch_page(session, query.order_by(ContainmentAction.id), limit=limit)


def active_actions(session: Session, *, system_id: str) -> list[ContainmentAction]:
    query = select(ContainmentAction).where(
        ContainmentAction.system_id == system_id,
        ContainmentAction.state == ActionState.active,
    )
    return list(session.scalars(query.order_by(ContainmentAction.id)))


def bump_revision(session: Session, *, system_id: str) -> int:
    """Raise the system's control revision (inside the caller's transaction)."""
    row = session.get(ControlRevision, system_id, with_for_update=True)
    now = utcnow()
    if row is None:
        row = ControlRevision(system_id=system_id, revision=0, updated_at=now)
        session.add(row)
    row.revision += 1
    row.updated_at = now
    session.flush()
    return row.revision


def revisions(session: Session, *, system_ids: Iterable[str]) -> dict[str, int]:
    """The current control revision of each system (0 for one never changed)."""
    wanted = set(system_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(ControlRevision.system_id, ControlRevision.revision).where(
            ControlRevision.system_id.in_(wanted)
        )
    )
    found = {system_id: revision for system_id, revision in rows}
    return {system_id: found.get(system_id, 0) for system_id in wanted}


def control_out(row: ContainmentAction, *, redacted: bool = False) -> ControlOut:
    """One control in force; `redacted`: without its incident, people and reason (for a
    reader who may not see the incident)."""
    if redacted:
        return ControlOut(
            action_id=row.id,
            control=row.control,
            params=row.params,
            incident_id=None,
            set_by=None,
            requested_by=None,
            approved_by=None,
            set_at=row.applied_at or row.requested_at,
            reason=None,
            expires_at=row.expires_at,
            redacted=True,
        )
    return ControlOut(
        action_id=row.id,
        control=row.control,
        params=row.params,
        incident_id=row.incident_id,
        set_by=row.approved_by or row.requested_by,
        requested_by=row.requested_by,
        approved_by=row.approved_by,
        set_at=row.applied_at or row.requested_at,
        reason=row.reason,
        expires_at=row.expires_at,
    )


def control_state(
    session: Session, *, system_id: str, reader: Principal | None = None, full: bool = False
) -> ControlState:
    """The controls in force on a system, with the revision they belong to. The incident,
    people and reason of a control are shown only to a `reader` who may see its incident;
    without a reader (the guards' stream, the same bytes for every guard), only for open
    incidents. `full`: everything, for evidence snapshots."""
    system = get_system(session, system_id=system_id)
    revision = revisions(session, system_ids=[system_id])[system_id]
    spec = system.parsed
    actions = active_actions(session, system_id=system_id)
    ids = {a.incident_id for a in actions}
    seen = ids if full else _visible_incidents(session, ids, reader)
    return ControlState(
        system_id=system_id,
        revision=revision,
        fallback=spec.fallback,
        controls=[control_out(row, redacted=row.incident_id not in seen) for row in actions],
        tools=[t.name for t in spec.components.tools],
        agents=[a.name for a in spec.agents] if spec.agents else None,
    )


def _visible_incidents(
    session: Session, incident_ids: set[int], reader: Principal | None
) -> set[int]:
    if not incident_ids:
        return set()
    if reader is not None and reader.can(Permission.see_restricted):
        return incident_ids
    where = visible_to(reader) if reader is not None else Incident.visibility == Visibility.open
    query = select(Incident.id).where(Incident.id.in_(incident_ids), where)
    return set(session.scalars(query))


def action_out(row: ContainmentAction, message: str = "") -> ActionOut:
    out = ActionOut.model_validate(row, from_attributes=True)
    out.message = message
    return out


def action_record(row: ContainmentAction) -> ActionRecord:
    return ActionRecord(
        id=row.id,
        incident_id=row.incident_id,
        system_id=row.system_id,
        control=row.control,
        params=dict(row.params),
        reason=row.reason,
        expires_at=row.expires_at,
    )


def _interaction_dict(row: Interaction) -> dict[str, Any]:
    return {name: getattr(row, name) for name in SNAPSHOT_FIELDS}


def take_snapshot(
    session: Session,
    *,
    action: ContainmentAction,
    purpose: str,
    taken_by: str,
    interactions: int,
) -> ControlSnapshot:
    """Preserve the system's control state and its `interactions` most recent interactions
    before `action` changes the state (inside the caller's transaction)."""
    state = control_state(session, system_id=action.system_id, full=True)
    recent, _ = list_interactions(
        session, where=InteractionFilter(system_id=action.system_id), limit=interactions
    )
    content = {
        "system_id": action.system_id,
        "control_state": state.model_dump(mode="json"),
        "recent_interactions": [_interaction_dict(row) for row in recent],
    }
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)
    content = orjson.loads(canonical)
    row = ControlSnapshot(
        incident_id=action.incident_id,
        system_id=action.system_id,
        action_id=action.id,
        purpose=purpose,
        taken_by=taken_by,
        taken_at=utcnow(),
        content=content,
        sha256=hashlib.sha256(canonical).hexdigest(),
    )
    session.add(row)
    session.flush()
    return row


def get_snapshot(session: Session, *, incident_id: int, snapshot_id: int) -> ControlSnapshot:
    row = session.get(ControlSnapshot, snapshot_id)
    if row is None or row.incident_id != incident_id:
        raise NotFound(f"Incident {incident_id} has no containment snapshot {snapshot_id}.")
    return row


def due_for_expiry(session: Session, *, now: datetime) -> list[ContainmentAction]:
    query = select(ContainmentAction).where(
        ContainmentAction.state == ActionState.active,
        ContainmentAction.expires_at.is_not(None),
        ContainmentAction.expires_at <= now,
    )
    return list(session.scalars(query.order_by(ContainmentAction.id)))


def next_expiry(session: Session) -> datetime | None:
    """When the next active control lapses, or a tool-call approval runs out, if any does."""
    times = [
        session.scalar(
            select(func.min(ContainmentAction.expires_at)).where(
                ContainmentAction.state == ActionState.active
            )
        ),
        session.scalar(
            select(func.min(ToolApproval.expires_at)).where(ToolApproval.state == "pending")
        ),
    ]
    return min((t for t in times if t is not None), default=None)


def quarantine_outputs(
    session: Session, *, incident_id: int, interaction_ids: Iterable[int], by: str, reason: str
) -> list[int]:
    """Mark interactions' outputs quarantined under the incident; answers the newly marked
    ids (inside the caller's transaction)."""
    wanted = sorted(set(interaction_ids))
    if not wanted:
        return []
    already = set(
        session.scalars(
            select(QuarantinedOutput.interaction_id).where(
                QuarantinedOutput.incident_id == incident_id,
                QuarantinedOutput.interaction_id.in_(wanted),
            )
        )
    )
    now = utcnow()
    new = [i for i in wanted if i not in already]
    session.add_all(
        QuarantinedOutput(
            incident_id=incident_id, interaction_id=i, marked_by=by, marked_at=now, reason=reason
        )
        for i in new
    )
    session.flush()
    return new


def quarantined(session: Session, *, interaction_ids: Iterable[int]) -> set[int]:
    """Which of the interactions have their output quarantined (under any incident)."""
    wanted = set(interaction_ids)
    if not wanted:
        return set()
    query = select(QuarantinedOutput.interaction_id).where(
        QuarantinedOutput.interaction_id.in_(wanted)
    )
    return set(session.scalars(query))


def approval_action(session: Session, *, system_id: str, tool: str) -> ContainmentAction | None:
    """The active control that makes calls of `tool` on the system need approval, if any."""
    for action in active_actions(session, system_id=system_id):
        if action.control == Control.require_approval and (
            action.params.get("all") or same_name(action.params.get("tool") or "", tool)
        ):
            return action
    return None


def tool_approval_state(row: ToolApproval, now: datetime | None = None) -> str:
    """pending, approved, denied, or expired (pending past its deadline)."""
    if row.state == "pending" and row.expires_at <= (now or utcnow()):
        return "expired"
    return row.state


def tool_approval_out(row: ToolApproval, *, show_arguments: bool) -> ToolApprovalOut:
    out = ToolApprovalOut.model_validate(row, from_attributes=True)
    out.state = tool_approval_state(row)
    if not show_arguments:
        out.arguments = None
    return out


def get_tool_approval(session: Session, *, approval_id: int) -> ToolApproval:
    row = session.get(ToolApproval, approval_id)
    if row is None:
        raise NotFound(f"No tool-call approval {approval_id}; GET /api/v1/controls/approvals.")
    return row


def list_tool_approvals(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    system_id: str | None = None,
    pending: bool = False,
) -> tuple[list[ToolApproval], str | None]:
    """Tool-call approvals, newest first; `pending`: only those still waiting."""
    query = select(ToolApproval).order_by(ToolApproval.id.desc())
    if system_id:
        query = query.where(ToolApproval.system_id == system_id)
    if pending:
        query = query.where(ToolApproval.state == "pending", ToolApproval.expires_at > utcnow())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(ToolApproval.id < after[0])
    return fetch_page(session, query, limit=limit)
