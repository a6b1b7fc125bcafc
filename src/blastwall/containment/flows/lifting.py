"""Lifting containment: a responder reverts an action (or withdraws a request), or its
expiry comes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal, Role
from blastwall.containment import service
from blastwall.containment.approvals import expire_approvals
from blastwall.containment.flows.acting import connectors, end, preserve
from blastwall.containment.models import ContainmentAction
from blastwall.containment.schemas import ActionState
from blastwall.errors import Conflict
from blastwall.incidents import flows as incident_flows
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident

#: Who lifts an expired control.
EXPIRY = Principal(name="blastwall:expiry", role=Role.admin)


def _lift(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    actor: Principal,
    state: ActionState,
    reason: str,
    interactions: int,
) -> None:
    purpose = "revert" if state is ActionState.reverted else "expiry"
    preserve(session, incident, action, purpose=purpose, actor=actor, interactions=interactions)
    end(action, state, actor, reason)
    revision = service.bump_revision(session, system_id=action.system_id)
    results = connectors(action, revert_reason=reason)
    verb = "Reverted" if state is ActionState.reverted else "Lapsed at its expiry:"
    incidents.record_entry(
        session,
        incident=incident,
        kind=f"containment_{state.value}",
        actor=actor,
        text=f"{verb} {action.describe()}: {reason}",
        data={
            "action_id": action.id,
            "system_id": action.system_id,
            "control": action.control,
            "revision": revision,
            "connectors": results,
        },
    )
    incident_flows.containment_changed(session, incident=incident, action=action, actor=actor)


def revert_action(
    session: Session,
    *,
    incident_id: int,
    action_id: int,
    actor: Principal,
    reason: str,
    snapshot_interactions: int,
) -> ContainmentAction:
    """Lift an active control (or withdraw one still waiting for approval)."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    action = service.get_action(session, incident_id=incident.id, action_id=action_id)
    if action.state == ActionState.pending_approval:
        end(action, ActionState.reverted, actor, reason)
        incidents.record_entry(
            session,
            incident=incident,
            kind="containment_withdrawn",
            actor=actor,
            text=f"Withdrew the request for {action.describe()}: {reason}",
            data={"action_id": action.id},
        )
    elif action.state == ActionState.active:
        _lift(
            session,
            incident,
            action,
            actor=actor,
            state=ActionState.reverted,
            reason=reason,
            interactions=snapshot_interactions,
        )
    else:
        raise Conflict(f"Action {action.id} is {action.state} already; nothing to revert.")
    session.flush()
    return action


def expire_action(
    session: Session, *, action_id: int, now: datetime, snapshot_interactions: int
) -> ContainmentAction | None:
    """Lift one active control whose expiry has come (None: it is not due, or not active,
    any more). The caller gives each its own transaction: a connector that fails raises
    PluginError, and that action is tried again on the next round."""
    action = session.get(ContainmentAction, action_id)
    if action is None or action.state != ActionState.active or action.expires_at is None:
        return None
    if action.expires_at > now:
        return None
    incident = incidents.get_incident(session, incident_id=action.incident_id, principal=EXPIRY)
    _lift(
        session,
        incident,
        action,
        actor=EXPIRY,
        state=ActionState.expired,
        reason=f"expired at {action.expires_at.isoformat()}",
        interactions=snapshot_interactions,
    )
    return action


def expire_undecided(session: Session, *, now: datetime) -> None:
    """Mark the tool-call approvals nobody decided in time expired."""
    expire_approvals(session, actor=EXPIRY, now=now)
