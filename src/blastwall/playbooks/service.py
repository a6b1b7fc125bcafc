"""The only way into playbook storage: attaching a playbook to an incident as a checklist,
reading the checklist, and completing or skipping its steps (each a timeline entry)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment.flows import request_action
from blastwall.containment.models import ContainmentAction
from blastwall.containment.policy import Policy
from blastwall.containment.schemas import ActionIn
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Problem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import IncidentSystem, RoleAssignment
from blastwall.inventory.models import System
from blastwall.inventory.schemas import Control
from blastwall.playbooks.library import Library, StepKind, select_steps
from blastwall.playbooks.models import ChecklistStep
from blastwall.playbooks.schemas import StepCompletion, StepRun

__all__ = ["attach", "checklist", "complete", "run_containment", "system_types"]


def system_types(session: Session, *, incident_id: int) -> list[str]:
    """The types (generative, agentic, predictive) of the incident's systems."""
    rows = session.execute(
        select(System.spec)
        .join(IncidentSystem, IncidentSystem.system_id == System.id)
        .where(IncidentSystem.incident_id == incident_id)
    )
    return sorted({str(spec.get("type")) for (spec,) in rows if spec.get("type")})


def attach(
    session: Session,
    *,
    incident_id: int,
    library: Library,
    playbook_id: str | None,
    actor: Principal,
) -> list[ChecklistStep]:
    """Attach a playbook (by default the one of the incident's archetype): the steps that
    apply to its severity and systems become its checklist."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    playbook = (
        library.get(playbook_id) if playbook_id else library.for_archetype(incident.archetype)
    )
    attached = session.scalar(
        select(func.count(ChecklistStep.id)).where(
            ChecklistStep.incident_id == incident.id, ChecklistStep.playbook_id == playbook.id
        )
    )
    if attached:
        raise Conflict(
            f"Playbook {playbook.id} is already attached to incident {incident.id}; "
            f"`blastwall playbook checklist {incident.id}` shows its steps."
        )
    types = system_types(session, incident_id=incident.id)
    steps = select_steps(playbook, severity=incident.severity, system_types=types)
    now = utcnow()
    rows = [
        ChecklistStep(
            incident_id=incident.id,
            playbook_id=playbook.id,
            playbook_version=playbook.version,
            step_id=step.id,
            position=position,
            kind=step.kind.value,
            title=step.title,
            detail=step.detail,
            control=step.control.value if step.control else None,
            decided_by=step.decided_by.value if step.decided_by else None,
            options="\n".join(step.options) or None,
            state="open",
            attached_by=actor.name,
            attached_at=now,
        )
        for position, step in enumerate(steps, start=1)
    ]
    session.add_all(rows)
    skipped = len(playbook.steps) - len(steps)
    text = f"playbook {playbook.name} attached: {len(steps)} steps"
    if skipped:
        where = ", ".join(types) or "no system"
        text += f" ({skipped} do not apply to a {incident.severity} on {where})"
    incidents.record_entry(
        session,
        incident=incident,
        kind="playbook_attached",
        actor=actor,
        text=text,
        data={
            "playbook": playbook.id,
            "version": playbook.version,
            "steps": [s.id for s in steps],
            "severity": incident.severity,
            "system_types": types,
        },
    )
    session.commit()
    return rows


def checklist(session: Session, *, incident_id: int, principal: Principal) -> list[ChecklistStep]:
    """The checklist of every playbook attached to the incident, in order."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    query = (
        select(ChecklistStep)
        .where(ChecklistStep.incident_id == incident.id)
        .order_by(ChecklistStep.attached_at, ChecklistStep.playbook_id, ChecklistStep.position)
    )
    return list(session.scalars(query))


def _may_decide(session: Session, row: ChecklistStep, actor: Principal) -> None:
    """A decision is taken by the incident role the step names, or by a commander."""
    if actor.can(Permission.decide_incidents):
        return
    holder = session.scalar(
        select(RoleAssignment.assignee).where(
            RoleAssignment.incident_id == row.incident_id, RoleAssignment.role == row.decided_by
        )
    )
    if holder != actor.name:
        who = f"the {row.decided_by} ({holder})" if holder else f"the {row.decided_by}"
        raise PermissionDenied(
            f"Step {row.id} is a decision for {who} of incident {row.incident_id}, or a "
            "commander. Assign the role with `blastwall incident assign`."
        )


def complete(
    session: Session,
    *,
    incident_id: int,
    item_id: int,
    completion: StepCompletion,
    actor: Principal,
) -> ChecklistStep:
    """Mark a checklist step done (a decision with its outcome) or skipped, on the timeline."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    row = session.get(ChecklistStep, item_id)
    if row is None or row.incident_id != incident.id:
        raise NotFound(
            f"Incident {incident.id} has no checklist step {item_id}; "
            f"`blastwall playbook checklist {incident.id}` lists them."
        )
    if row.state != "open":
        raise Conflict(
            f"Step {row.id} was already {row.state} by {row.completed_by} at "
            f"{row.completed_at:%Y-%m-%d %H:%M}Z."
        )
    options = row.options.split("\n") if row.options else []
    if row.kind == StepKind.decision.value and not completion.skip:
        if completion.outcome not in options:
            raise InvalidInput(
                f"Step {row.id} is a decision: give one of its options as the outcome.",
                problems=[Problem("outcome", f"choose one of: {', '.join(options)}")],
            )
        _may_decide(session, row, actor)
    elif completion.outcome is not None and completion.outcome not in options:
        raise InvalidInput(
            f"Step {row.id} is a {row.kind} step: it takes no outcome, only a note.",
            problems=[Problem("outcome", "leave it out")],
        )
    row.state = "skipped" if completion.skip else "done"
    row.outcome = completion.outcome
    row.note = completion.note
    row.completed_by = actor.name
    row.completed_at = utcnow()
    verb = "skipped" if completion.skip else ("decided" if row.outcome else "done")
    text = f"{row.playbook_id} step {verb}: {row.title}"
    if row.outcome:
        text += f" → {row.outcome}"
    if completion.note:
        text += f" ({completion.note})"
    incidents.record_entry(
        session,
        incident=incident,
        kind="decision" if row.outcome else "playbook_step",
        actor=actor,
        text=text,
        data={
            "checklist_step": row.id,
            "playbook": row.playbook_id,
            "step": row.step_id,
            "kind": row.kind,
            "state": row.state,
            "outcome": row.outcome,
            "control": row.control,
        },
    )
    session.commit()
    return row


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
    approval, as the policy says), then mark the step done with the action's number."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    row = session.get(ChecklistStep, item_id)
    if row is None or row.incident_id != incident.id:
        raise NotFound(f"Incident {incident.id} has no checklist step {item_id}.")
    if row.kind != StepKind.containment.value or row.control is None:
        raise InvalidInput(
            f"Step {row.id} is a {row.kind} step; only containment steps run an action.",
            problems=[Problem("item_id", "choose a containment step of the checklist")],
        )
    if row.state != "open":
        raise Conflict(f"Step {row.id} was already {row.state} by {row.completed_by}.")
    action, message = request_action(
        session,
        incident_id=incident.id,
        data=ActionIn(
            control=Control(row.control),
            params=run.params,
            reason=run.reason,
            expires_at=run.expires_at,
            system=run.system,
        ),
        actor=actor,
        policy=policy,
        snapshot_interactions=snapshot_interactions,
    )
    note = f"containment action {action.id} ({action.state}): {run.reason}"
    done = complete(
        session,
        incident_id=incident.id,
        item_id=row.id,
        completion=StepCompletion(note=note[:2000]),
        actor=actor,
    )
    return done, action, message
