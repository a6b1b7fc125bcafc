"""The only way into playbook storage: attaching a playbook to an incident as a checklist,
reading the checklist, and completing or skipping its steps (each a timeline entry).

A step is named by its number in its checklist (1..n within one attached playbook), by
`PLAYBOOK:NUMBER`, or by its name (the step id, or a unique case-insensitive prefix of its
id or title); the API also takes the row's id. A containment step is ticked when an action
of its control is applied under the incident (`tick_for_action`, the pipeline's step
for `ContainmentChanged`, `playbooks.flows`), with the action's number on the step and the timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment.models import ContainmentAction
from blastwall.db import utcnow
from blastwall.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Problem
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident, IncidentSystem, RoleAssignment
from blastwall.inventory.models import System
from blastwall.playbooks.library import Library, StepKind, select_steps
from blastwall.playbooks.models import ChecklistStep
from blastwall.playbooks.schemas import StepCompletion

__all__ = [
    "attach",
    "checklist",
    "complete",
    "find_step",
    "label",
    "running",
    "step_row",
    "system_types",
    "tick_for_action",
]


def system_types(session: Session, *, incident_id: int) -> list[str]:
    """The types (generative, agentic, predictive) of the incident's systems."""
    rows = session.scalars(
        select(System.type)
        .join(IncidentSystem, IncidentSystem.system_id == System.id)
        .where(IncidentSystem.incident_id == incident_id)
    )
    return sorted({t.value for t in rows})


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
            kind=step.kind,
            title=step.title,
            detail=step.detail,
            control=step.control,
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
    session.flush()
    return rows


def _steps(session: Session, incident_id: int) -> list[ChecklistStep]:
    query = (
        select(ChecklistStep)
        .where(ChecklistStep.incident_id == incident_id)
        .order_by(ChecklistStep.attached_at, ChecklistStep.playbook_id, ChecklistStep.position)
    )
    return list(session.scalars(query))


def checklist(session: Session, *, incident_id: int, principal: Principal) -> list[ChecklistStep]:
    """The checklist of every playbook attached to the incident, in order."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    return _steps(session, incident.id)


def label(row: ChecklistStep) -> str:
    return f"{row.playbook_id}:{row.position} ({row.step_id})"


def find_step(
    session: Session,
    *,
    incident_id: int,
    step: str,
    principal: Principal,
    playbook: str | None = None,
    row_id: bool = False,
) -> ChecklistStep:
    """The checklist step `step` names: its number in its checklist (1..n within one
    attached playbook; with several attached, give `playbook` or write `PLAYBOOK:NUMBER`),
    or its name: the step id, or a unique case-insensitive prefix of its id or its title
    (`PLAYBOOK:NAME` narrows to one playbook). With `row_id`, a bare number is the row's id
    instead (the API's form)."""
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    rows = _steps(session, incident.id)
    listing = f"`blastwall playbook checklist {incident.id}` lists them"
    ref = step.strip()
    if ":" in ref:
        playbook, ref = (part.strip() for part in ref.split(":", 1))
    if playbook is not None:
        rows = [r for r in rows if r.playbook_id == playbook]
        if not rows:
            raise NotFound(f"Incident {incident.id} has no checklist of playbook '{playbook}'.")
    if ref.isascii() and ref.isdigit():
        number = int(ref)
        if row_id and playbook is None:
            found = [r for r in rows if r.id == number]
        else:
            found = [r for r in rows if r.position == number]
        if len(found) > 1:
            raise InvalidInput(
                f"Incident {incident.id} has {len(found)} checklists with a step {number}; "
                "say which playbook's.",
                [Problem("step", f"write one of: {', '.join(label(r) for r in found)}")],
            )
    else:
        wanted = ref.casefold()
        found = [r for r in rows if r.step_id.casefold() == wanted]
        if not found and wanted:
            found = [
                r
                for r in rows
                if r.step_id.casefold().startswith(wanted) or r.title.casefold().startswith(wanted)
            ]
        if len(found) > 1:
            raise InvalidInput(
                f"'{step}' names {len(found)} steps of incident {incident.id}'s checklist.",
                [Problem("step", f"write one of: {', '.join(label(r) for r in found)}")],
            )
    if not found:
        raise NotFound(f"Incident {incident.id} has no checklist step '{step}'; {listing}.")
    return found[0]


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
            f"Step {label(row)} is a decision for {who} of incident {row.incident_id}, or a "
            "commander. Assign the role with `blastwall incident assign`."
        )


def step_row(session: Session, incident: Incident, item_id: int) -> ChecklistStep:
    row = session.get(ChecklistStep, item_id)
    if row is None or row.incident_id != incident.id:
        raise NotFound(
            f"Incident {incident.id} has no checklist step {item_id}; "
            f"`blastwall playbook checklist {incident.id}` lists them."
        )
    return row


def complete(
    session: Session,
    *,
    incident_id: int,
    item_id: int,
    completion: StepCompletion,
    actor: Principal,
) -> ChecklistStep:
    """Mark a checklist step done (a decision with its outcome) or skipped, on the timeline.
    `item_id` is the row's id (`find_step` finds it from a number or a name)."""
    actor.require(Permission.write_incidents)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=actor)
    row = step_row(session, incident, item_id)
    if row.state != "open":
        raise Conflict(
            f"Step {label(row)} was already {row.state} by {row.completed_by} at "
            f"{row.completed_at:%Y-%m-%d %H:%M}Z."
        )
    options = row.options.split("\n") if row.options else []
    if row.kind == StepKind.decision and not completion.skip:
        if completion.outcome not in options:
            raise InvalidInput(
                f"Step {label(row)} is a decision: give one of its options as the outcome.",
                problems=[Problem("outcome", f"choose one of: {', '.join(options)}")],
            )
        _may_decide(session, row, actor)
    elif completion.outcome is not None and completion.outcome not in options:
        raise InvalidInput(
            f"Step {label(row)} is a {row.kind} step: it takes no outcome, only a note.",
            problems=[Problem("outcome", "leave it out")],
        )
    _close(
        session,
        incident,
        row,
        state="skipped" if completion.skip else "done",
        actor=actor,
        outcome=completion.outcome,
        note=completion.note,
    )
    session.flush()
    return row


def _close(
    session: Session,
    incident: Incident,
    row: ChecklistStep,
    *,
    state: str,
    actor: Principal,
    outcome: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> None:
    """Mark the step done or skipped and say so on the timeline (the caller commits)."""
    row.state = state
    row.outcome = outcome
    row.note = note
    row.completed_by = actor.name
    row.completed_at = at or utcnow()
    verb = "skipped" if state == "skipped" else ("decided" if outcome else "done")
    text = f"{row.playbook_id} step {row.position} {verb}: {row.title}"
    if outcome:
        text += f" → {outcome}"
    if note:
        text += f" ({note})"
    incidents.record_entry(
        session,
        incident=incident,
        kind="decision" if outcome else "playbook_step",
        actor=actor,
        text=text,
        data={
            "checklist_step": row.id,
            "playbook": row.playbook_id,
            "number": row.position,
            "step": row.step_id,
            "kind": row.kind,
            "state": row.state,
            "outcome": row.outcome,
            "control": row.control,
            "action_id": row.action_id,
        },
    )


# The step being run from the checklist, while its action is requested (session.info key).
_RUNNING = "blastwall.playbooks.running_step"


@contextmanager
def running(session: Session, row: ChecklistStep) -> Iterator[None]:
    session.info[_RUNNING] = row.id
    try:
        yield
    finally:
        session.info.pop(_RUNNING, None)


def tick_for_action(
    session: Session, *, incident: Incident, action: ContainmentAction, actor: Principal
) -> list[ChecklistStep]:
    """An action was applied under the incident: tick the open steps it carries out, each
    with the action's number, at the time it was applied. In each attached checklist that is
    the step linked to the action (run from the checklist, waiting for approval), else the
    step being run, else the first open containment step of the same control that does not
    wait for another action. Answers the steps ticked (the caller commits)."""
    waiting = select(ContainmentAction.id).where(
        ContainmentAction.incident_id == incident.id,
        ContainmentAction.state == "pending_approval",
        ContainmentAction.id != action.id,
    )
    rows = [
        r
        for r in _steps(session, incident.id)
        if r.state == "open"
        and r.kind == StepKind.containment
        and (r.action_id == action.id or r.control == action.control)
    ]
    if not rows:
        return []
    blocked = set(session.scalars(waiting))
    running = session.info.get(_RUNNING)
    chosen: dict[str, ChecklistStep] = {}

    def rank(row: ChecklistStep) -> int:
        if row.action_id == action.id:
            return 0
        if row.id == running:
            return 1
        return 2

    for row in rows:
        if rank(row) == 2 and row.action_id in blocked:
            continue
        best = chosen.get(row.playbook_id)
        if best is None or rank(row) < rank(best):
            chosen[row.playbook_id] = row
    ticked = sorted(chosen.values(), key=lambda r: (r.attached_at, r.playbook_id, r.position))
    for row in ticked:
        row.action_id = action.id
        _close(
            session,
            incident,
            row,
            state="done",
            actor=actor,
            note=f"containment action {action.id} applied: {action.control}"[:2000],
            at=action.applied_at,
        )
    return ticked
