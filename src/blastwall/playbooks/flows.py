"""Playbooks as steps of the pipeline: a checklist's containment step run through
containment, and the steps ticked when containment is applied under an incident."""

from __future__ import annotations

from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment.flows import request_action
from blastwall.containment.models import ContainmentAction
from blastwall.containment.policy import Policy
from blastwall.containment.schemas import ActionIn
from blastwall.errors import Conflict, InvalidInput, Problem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.pipeline import ContainmentChanged
from blastwall.playbooks import service
from blastwall.playbooks.library import StepKind
from blastwall.playbooks.models import ChecklistStep
from blastwall.playbooks.schemas import StepRun

__all__ = ["containment_changed", "run_containment"]


def containment_changed(session: Session, event: ContainmentChanged) -> list[ChecklistStep]:
    """The pipeline's step after containment was applied under an incident: tick the open
    steps the action carries out."""
    incident = session.get(Incident, event.incident_id)
    action = session.get(ContainmentAction, event.action_id)
    if incident is None or action is None:
        return []
    return service.tick_for_action(session, incident=incident, action=action, actor=event.actor)


def run_containment(
    session: Session,
    *,
    incident_id: int,
    item_id: int,
    run: StepRun,
    actor: Principal,
    policy: Policy,
    snapshot_interactions: int,
) -> tuple[ChecklistStep, ContainmentAction, str]:
    """Apply a containment step's control through containment (pre-authorised or waiting for
    approval, as the policy says). The step is ticked with the action's number when the
    action is applied: at once, or when a second person approves it; until then it is
    linked to the action it waits for."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    row = service.step_row(session, incident, item_id)
    name = service.label(row)
    if row.kind != StepKind.containment or row.control is None:
        raise InvalidInput(
            f"Step {name} is a {row.kind} step; only containment steps run an action.",
            problems=[Problem("step", "choose a containment step of the checklist")],
        )
    if row.state != "open":
        raise Conflict(f"Step {name} was already {row.state} by {row.completed_by}.")
    if row.action_id is not None:
        linked = session.get(ContainmentAction, row.action_id)
        if linked is not None and linked.state == "pending_approval":
            raise Conflict(
                f"Step {name} waits for the approval of containment action {linked.id}; "
                f"approve or withdraw it first (`blastwall containment approve {incident.id} "
                f"{linked.id}`)."
            )
    with service.running(session, row):
        action, message = request_action(
            session,
            incident_id=incident.id,
            data=ActionIn(
                control=row.control,
                params=run.params,
                reason=run.reason,
                expires_at=run.expires_at,
                system=run.system,
            ),
            actor=actor,
            policy=policy,
            snapshot_interactions=snapshot_interactions,
        )
    if row.state == "open":
        row.action_id = action.id
        row.note = f"waiting for the approval of containment action {action.id}: {run.reason}"[
            :2000
        ]
        session.flush()
    return row, action, message
