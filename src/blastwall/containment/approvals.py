"""Tool calls waiting for a person: while `require_approval` is in force, a guard asks
Blastwall to approve one call and waits; an approver decides; both are on the incident's
timeline."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal, Role
from blastwall.containment import service
from blastwall.containment.models import ContainmentAction, ToolApproval
from blastwall.containment.policy import Policy
from blastwall.containment.schemas import ToolApprovalIn, ToolDecisionIn
from blastwall.db import utcnow
from blastwall.errors import Conflict, PermissionDenied
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.inventory.service import get_system

#: Reads the incident of an approval whoever acts: the guard that asks may not see it.
_CONTROL_PLANE = Principal(name="blastwall", role=Role.admin)


def _incident_of(session: Session, row: ToolApproval) -> Incident:
    action = session.get(ContainmentAction, row.action_id)
    assert action is not None
    return incidents.get_incident(session, incident_id=action.incident_id, principal=_CONTROL_PLANE)


def _record(session: Session, row: ToolApproval, kind: str, actor: Principal, text: str) -> None:
    """An entry about the approval on its incident's timeline."""
    incidents.record_entry(
        session,
        incident=_incident_of(session, row),
        kind=kind,
        actor=actor,
        text=text,
        data={"approval_id": row.id, "action_id": row.action_id, "tool": row.tool},
    )


def request_tool_approval(
    session: Session, *, data: ToolApprovalIn, principal: Principal
) -> ToolApproval:
    """Record a guard's request to call a tool that needs approval now."""
    principal.require(Permission.report)
    get_system(session, system_id=data.system)
    action = service.approval_action(session, system_id=data.system, tool=data.tool)
    if action is None:
        raise Conflict(
            f"No control in force on {data.system} requires approval of {data.tool}; the "
            "guard's state is out of date. Check the tool again against the current state."
        )
    now = utcnow()
    row = ToolApproval(
        system_id=data.system,
        action_id=action.id,
        tool=data.tool,
        arguments=data.arguments,
        agent=data.agent,
        state="pending",
        requested_by=principal.name,
        requested_at=now,
        expires_at=now + timedelta(seconds=data.timeout),
    )
    session.add(row)
    session.flush()
    _record(
        session,
        row,
        "tool_approval_requested",
        principal,
        f"{data.system} asks to call {data.tool}"
        + (f" (agent {data.agent})" if data.agent else "")
        + f"; approve or deny before {row.expires_at.isoformat()} with "
        f"POST /api/v1/controls/approvals/{row.id}/decide "
        f"(CLI: blastwall containment decide {row.id} --approve)",
    )
    session.flush()
    return row


def decide_tool_approval(
    session: Session,
    *,
    approval_id: int,
    decision: ToolDecisionIn,
    actor: Principal,
    policy: Policy,
) -> ToolApproval:
    """An approver allows or refuses one waiting tool call."""
    if not policy.may_approve(actor.role):
        raise PermissionDenied(
            f"The role '{actor.role.value}' may not approve tool calls. Use a token with one "
            f"of these roles: {', '.join(r.value for r in policy.approvers)}."
        )
    row = service.get_tool_approval(session, approval_id=approval_id)
    state = service.tool_approval_state(row)
    if state != "pending":
        raise Conflict(f"Tool-call approval {row.id} is {state}; only pending ones are decided.")
    row.state = "approved" if decision.approve else "denied"
    row.decided_by = actor.name
    row.decided_at = utcnow()
    row.note = decision.note or None
    _record(
        session,
        row,
        f"tool_call_{row.state}",
        actor,
        f"Call of {row.tool} on {row.system_id} {row.state} by {actor.name}"
        + (f": {decision.note}" if decision.note else ""),
    )
    session.flush()
    return row


def expire_approvals(session: Session, *, actor: Principal, now: datetime) -> list[ToolApproval]:
    """Mark the tool-call approvals nobody decided in time expired, each on its incident's
    timeline (the guard has taken its fallback or refused the call by then); commits."""
    due = list(
        session.scalars(
            select(ToolApproval)
            .where(ToolApproval.state == "pending", ToolApproval.expires_at <= now)
            .order_by(ToolApproval.id)
        )
    )
    for row in due:
        row.state = "expired"
        _record(
            session,
            row,
            "tool_call_expired",
            actor,
            f"No one decided on {row.system_id}'s call of {row.tool} (approval {row.id}) "
            f"before {row.expires_at.isoformat()}; the call did not go ahead.",
        )
    session.flush()
    return due
