"""Requesting containment, and a second person's approval or rejection of a request the
policy does not pre-authorise."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service
from blastwall.containment.flows.acting import FINISHED, connectors, end, preserve
from blastwall.containment.flows.targets import system_of, target
from blastwall.containment.models import ContainmentAction
from blastwall.containment.policy import Policy
from blastwall.containment.schemas import PARAMS, ActionIn, ActionState
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, PermissionDenied, Problem
from blastwall.errors import field_path as _path
from blastwall.incidents import flows as incident_flows
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.inventory.schemas import Control, SystemSpec
from blastwall.inventory.service import get_system
from blastwall.obligations.service import serious_incident_obligations


def _apply(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    actor: Principal,
    interactions: int,
    note: str = "",
) -> None:
    snapshot_id = preserve(
        session, incident, action, purpose="apply", actor=actor, interactions=interactions
    )
    action.state = ActionState.active
    action.applied_at = utcnow()
    action.snapshot_id = snapshot_id
    action.verification = "pending"
    if actor.name != action.requested_by:
        action.approved_by = actor.name
    revision = service.bump_revision(session, system_id=action.system_id)
    results = connectors(action)
    approved = f", approved by {actor.name}" if action.approved_by else ""
    until = f" until {action.expires_at.isoformat()}" if action.expires_at else ""
    incidents.record_entry(
        session,
        incident=incident,
        kind="containment_applied",
        actor=actor,
        text=f"Applied {action.describe()}{until}{approved}: {action.reason}"
        + (f" ({note})" if note else ""),
        data={
            "action_id": action.id,
            "system_id": action.system_id,
            "control": action.control,
            "params": action.params,
            "requested_by": action.requested_by,
            "approved_by": action.approved_by,
            "expires_at": action.expires_at.isoformat() if action.expires_at else None,
            "revision": revision,
            "snapshot_id": snapshot_id,
            "connectors": results,
        },
    )
    incident_flows.containment_changed(session, incident=incident, action=action, actor=actor)


def _params(
    session: Session, system_id: str, spec: SystemSpec, incident: Incident, data: ActionIn
) -> tuple[dict[str, Any], str]:
    """The request's parameters, checked against the control and filled in with the
    inventory's names; answers them and a note for the timeline."""
    if data.control not in spec.controls:
        raise Conflict(
            f"{system_id} does not declare the control '{data.control.value}' in the "
            f"inventory (it declares: {', '.join(spec.controls) or 'none'}). "
            "Add it under `controls` in the system's YAML and apply the inventory first."
        )
    try:
        params = PARAMS[data.control].model_validate(data.params)
    except ValidationError as exc:
        raise InvalidInput(
            f"The parameters do not fit the control '{data.control.value}'.",
            [Problem(_path(("body", "params", *e["loc"])), e["msg"]) for e in exc.errors()],
        ) from None
    clean = params.model_dump(exclude_none=True, exclude_defaults=False)
    if (
        data.control in (Control.pin_prompt_version, Control.pin_model_version)
        and not data.rollback
        and "version" not in clean
    ):
        raise InvalidInput(
            "Say which version to pin.",
            [Problem("body.params.version", "give a version, or set rollback: true")],
        )
    note, problems = target(session, spec, incident, data.control, clean, rollback=data.rollback)
    if problems:
        raise InvalidInput("The parameters name things the inventory does not declare.", problems)
    return clean, note


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise InvalidInput(
            "expires_at needs a timezone.",
            [Problem("body.expires_at", "add one, e.g. 2026-12-01T10:00:00Z")],
        )
    if expires_at <= now:
        raise InvalidInput(
            "expires_at is in the past.",
            [Problem("body.expires_at", f"give a time after now ({now.isoformat()})")],
        )


def _wait(
    session: Session,
    incident: Incident,
    action: ContainmentAction,
    *,
    actor: Principal,
    policy: Policy,
) -> str:
    """Record a request the policy does not pre-authorise; answers who approves it, how."""
    approvers = " or ".join(r.value for r in policy.approvers)
    message = (
        f"Waiting for approval: the containment policy does not pre-authorise "
        f"'{action.control}' for the role {actor.role.value} at {incident.severity.value}. A "
        f"{approvers} other than {actor.name} approves it with POST /api/v1/incidents/"
        f"{incident.id}/actions/{action.id}/approve (CLI: blastwall containment approve "
        f"{incident.id} {action.id})."
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="containment_requested",
        actor=actor,
        text=f"Requested {action.describe()}, waiting for approval: {action.reason}",
        data={
            "action_id": action.id,
            "control": action.control,
            "params": action.params,
            "system_id": action.system_id,
            "approvers": [r.value for r in policy.approvers],
        },
    )
    return message


#: Controls that alter the system in a way that could affect a later evaluation of causes.
ALTERING = frozenset({Control.pin_prompt_version, Control.pin_model_version, Control.revoke_tool})


def _ai_act_gate(session: Session, incident: Incident, data: ActionIn, actor: Principal) -> None:
    """AI Act Art. 73(6): while the incident has an AI Act serious-incident obligation, a
    control that alters the system needs an acknowledgement (the authority was informed, or
    the change is needed to stop harm), recorded on the timeline. The evidence snapshot is
    taken before the control applies, as for every action."""
    if data.control not in ALTERING:
        return
    held = serious_incident_obligations(session, incident_id=incident.id)
    if not held:
        return
    names = ", ".join(f"{o.id} ({o.rule_id}, {o.status.value})" for o in held)
    if data.acknowledgement is None:
        raise InvalidInput(
            f"Incident {incident.id} has an AI Act serious-incident obligation ({names}): "
            f"{data.control.value} alters the system, and Art. 73(6) forbids altering it in a "
            "way that could affect the evaluation of the causes before the authorities are "
            "informed.",
            [
                Problem(
                    "body.acknowledgement",
                    "say 'authority_informed' or 'needed_to_stop_harm' (`--acknowledgement` "
                    "on the command line)",
                )
            ],
        )
    incidents.record_entry(
        session,
        incident=incident,
        kind="ai_act_acknowledgement",
        actor=actor,
        text=f"AI Act Art. 73(6): {data.control.value} requested with the acknowledgement "
        f"'{data.acknowledgement.value.replace('_', ' ')}' (obligations {names})",
        data={
            "control": data.control.value,
            "acknowledgement": data.acknowledgement.value,
            "obligations": [o.id for o in held],
        },
    )


def request_action(
    session: Session,
    *,
    incident_id: int,
    data: ActionIn,
    actor: Principal,
    policy: Policy,
    snapshot_interactions: int,
    grace_seconds: int = 30,
) -> tuple[ContainmentAction, str]:
    """Apply a control now when the policy pre-authorises it for the actor, or record it as
    waiting for approval. Answers the action and a sentence saying which."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    if incident.status in FINISHED:
        raise Conflict(
            f"Incident {incident.id} is {incident.status}; containment acts under an active "
            "incident. Reopen it or open a new one."
        )
    system_id = system_of(session, incident, data.system)
    spec = get_system(session, system_id=system_id).parsed
    clean, note = _params(session, system_id, spec, incident, data)
    _ai_act_gate(session, incident, data, actor)
    now = utcnow()
    _check_expiry(data.expires_at, now)
    action = ContainmentAction(
        incident_id=incident.id,
        system_id=system_id,
        control=data.control,
        params=clean,
        reason=data.reason,
        state=ActionState.pending_approval,
        requested_by=actor.name,
        requested_role=actor.role,
        requested_at=now,
        expires_at=data.expires_at.astimezone(UTC) if data.expires_at else None,
        grace_seconds=data.grace_seconds or grace_seconds,
    )
    session.add(action)
    session.flush()
    severity = incident.severity
    if policy.preauthorised_for(actor.role, data.control, severity):
        _apply(
            session, incident, action, actor=actor, interactions=snapshot_interactions, note=note
        )
        message = (
            f"Applied {action.describe()}. Its guards enforce it as soon as the new state "
            "reaches them."
        )
    else:
        message = _wait(session, incident, action, actor=actor, policy=policy)
    session.flush()
    return action, message


def _pending(
    session: Session, *, incident_id: int, action_id: int, actor: Principal, policy: Policy
) -> tuple[Incident, ContainmentAction]:
    """The incident and its action waiting for approval, if `actor` may decide on it."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    action = service.get_action(session, incident_id=incident.id, action_id=action_id)
    if not policy.may_approve(actor.role):
        raise PermissionDenied(
            f"The role '{actor.role.value}' may not approve containment actions. Use a token "
            f"with one of these roles: {', '.join(r.value for r in policy.approvers)}."
        )
    if action.state != ActionState.pending_approval:
        raise Conflict(f"Action {action.id} is {action.state}, not waiting for approval.")
    return incident, action


def approve_action(
    session: Session,
    *,
    incident_id: int,
    action_id: int,
    actor: Principal,
    policy: Policy,
    snapshot_interactions: int,
    note: str = "",
) -> ContainmentAction:
    """A second person approves a waiting action; it is applied at once."""
    incident, action = _pending(
        session, incident_id=incident_id, action_id=action_id, actor=actor, policy=policy
    )
    if actor.name == action.requested_by:
        raise Conflict(f"{actor.name} asked for action {action.id}; a second person approves it.")
    if incident.status in FINISHED:
        raise Conflict(f"Incident {incident.id} is {incident.status}; reject the action instead.")
    _apply(session, incident, action, actor=actor, interactions=snapshot_interactions)
    if note:
        incidents.record_entry(
            session,
            incident=incident,
            kind="note",
            actor=actor,
            text=f"Approval of action {action.id}: {note}",
        )
    session.flush()
    return action


def reject_action(
    session: Session,
    *,
    incident_id: int,
    action_id: int,
    actor: Principal,
    policy: Policy,
    note: str = "",
) -> ContainmentAction:
    incident, action = _pending(
        session, incident_id=incident_id, action_id=action_id, actor=actor, policy=policy
    )
    end(action, ActionState.rejected, actor, note)
    incidents.record_entry(
        session,
        incident=incident,
        kind="containment_rejected",
        actor=actor,
        text=f"Rejected {action.describe()}" + (f": {note}" if note else ""),
        data={"action_id": action.id},
    )
    session.flush()
    return action
