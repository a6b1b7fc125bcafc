"""`blastwall incident ...`: open, list, show, update, status, assign, note, task."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.incidents import flows, service
from blastwall.incidents import roles as role_service
from blastwall.incidents import tasks as task_service
from blastwall.incidents import timeline as timeline_service
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import (
    Archetype,
    EntryCreate,
    EntryKind,
    EntryOut,
    IncidentCreate,
    IncidentRole,
    IncidentUpdate,
    RoleAssign,
    Severity,
    StatusChange,
    TaskCreate,
    TaskKind,
    TaskOut,
    TaskState,
    TaskUpdate,
    Verdict,
    VerdictIn,
    Visibility,
)

app = typer.Typer(
    help="Incidents: open, list, show, update, status, assign, note, task.", no_args_is_help=True
)
task_app = typer.Typer(help="Tasks and action items of an incident.", no_args_is_help=True)
app.add_typer(task_app, name="task")

IncidentArg = Annotated[int, typer.Argument(help="The incident's number.", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("open")
def open_(
    title: Annotated[str, typer.Option(help="One line saying what is wrong.")],
    archetype: Annotated[Archetype, typer.Option(help="What kind of AI incident.")],
    severity: Annotated[Severity, typer.Option(help="SEV1 (worst) to SEV4.")],
    reason: Annotated[str, typer.Option("--reason", help="Why this severity.")] = "",
    summary: Annotated[str, typer.Option(help="What is known so far.")] = "",
    system: Annotated[list[str] | None, typer.Option(help="An involved system (repeat).")] = None,
    restricted: Annotated[bool, typer.Option(help="Visible to participants only.")] = False,
    json: JsonOpt = False,
) -> None:
    """Open an incident (status: triage)."""
    data = IncidentCreate(
        title=title,
        archetype=archetype,
        severity=severity,
        severity_reason=reason,
        summary=summary,
        systems=system or [],
        visibility=Visibility.restricted if restricted else Visibility.open,
    )
    with session_scope() as session:
        incident = flows.open_incident(session, data=data, actor=operator())
        audit(session, command="incident open", object=f"incident:{incident.id}")
        described = service.describe(session, [incident])[0]
    if json:
        print_json(described)
    else:
        out.print(f"incident {incident.id} opened: {incident.title} [{incident.severity}]")


@app.command("list")
def list_(
    status: Annotated[Status | None, typer.Option(help="Only this status.")] = None,
    severity: Annotated[Severity | None, typer.Option(help="Only this severity.")] = None,
    system: Annotated[
        str | None, typer.Option(help="Only incidents involving this system.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    json: JsonOpt = False,
) -> None:
    """List incidents, newest first."""
    with session_scope() as session:
        rows, _ = service.list_incidents(
            session,
            principal=operator(),
            limit=limit,
            status=status.value if status else None,
            severity=severity.value if severity else None,
            system_id=system,
        )
        items = service.describe(session, rows)
    if json:
        print_json(items)
        return
    print_table(
        ["id", "severity", "status", "archetype", "title", "systems", "detected"],
        [
            (i.id, i.severity, i.status, i.archetype, i.title, i.systems, i.milestones.detected)
            for i in items
        ],
    )


@app.command("show")
def show(incident_id: IncidentArg, json: JsonOpt = False) -> None:
    """Show an incident with its roles, tasks and timeline."""
    who = operator()
    with session_scope() as session:
        incident = service.get_incident(session, incident_id=incident_id, principal=who)
        described = service.describe(session, [incident])[0]
        roles = role_service.list_roles(session, incident_id=incident_id, principal=who)
        tasks = [
            TaskOut.model_validate(t, from_attributes=True)
            for t in task_service.list_tasks(session, incident_id=incident_id, principal=who)[0]
        ]
        entries, states, _ = timeline_service.list_timeline(
            session, incident_id=incident_id, principal=who, limit=500
        )
        timeline = [
            EntryOut.model_validate(e, from_attributes=True).model_copy(
                update={"hypothesis_state": states.get(e.id)}
            )
            for e in entries
        ]
    if json:
        print_json(
            {
                "incident": described,
                "roles": [{"role": r.role, "assignee": r.assignee} for r in roles],
                "tasks": tasks,
                "timeline": timeline,
            }
        )
        return
    i = described
    out.print(f"[bold]Incident {i.id}: {escape(i.title)}[/bold]", markup=True)
    out.print(
        f"{i.severity} · {i.status} · {i.archetype} · {i.visibility} · "
        f"systems: {', '.join(i.systems) or '-'}"
    )
    if i.severity_reason:
        out.print(f"severity reason: {i.severity_reason}")
    if i.summary:
        out.print(i.summary)
    m = i.milestones
    print_table(
        ["detected", "acknowledged", "contained", "mitigated", "resolved", "closed"],
        [(m.detected, m.acknowledged, m.contained, m.mitigated, m.resolved, m.closed)],
        title="Milestones",
    )
    d = i.durations
    print_table(
        ["to acknowledge", "to contain", "to mitigate", "to resolve"],
        [
            tuple(
                _duration(v) for v in (d.to_acknowledge, d.to_contain, d.to_mitigate, d.to_resolve)
            )
        ],
        title="Time from detection",
    )
    print_table(["role", "assignee"], [(r.role, r.assignee) for r in roles], title="Roles")
    print_table(
        ["id", "kind", "title", "owner", "due", "state"],
        [(t.id, t.kind, t.title, t.owner, t.due, t.state) for t in tasks],
        title="Tasks",
    )
    print_table(
        ["#", "at", "who", "kind", "text"],
        [
            (
                e.id,
                e.at,
                e.actor,
                e.kind + (f" ({e.hypothesis_state})" if e.hypothesis_state else ""),
                e.text,
            )
            for e in timeline
        ],
        title="Timeline",
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign, whole = ("-" if seconds < 0 else ""), int(abs(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{sign}{hours}h{rest // 60:02d}m{rest % 60:02d}s"


@app.command("update")
def update(
    incident_id: IncidentArg,
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    summary: Annotated[str | None, typer.Option(help="A new summary.")] = None,
    severity: Annotated[Severity | None, typer.Option(help="A new severity.")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why this severity (needed with --severity).")
    ] = None,
    archetype: Annotated[Archetype | None, typer.Option(help="A new archetype.")] = None,
    visibility: Annotated[
        Visibility | None, typer.Option(help="open or restricted (a commander's decision).")
    ] = None,
    system: Annotated[
        list[str] | None,
        typer.Option(help="The involved systems (repeat); replaces the list."),
    ] = None,
    participant: Annotated[
        list[str] | None, typer.Option("--add-participant", help="Add a participant (repeat).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Change an incident's title, summary, severity, archetype, visibility, systems or
    participants; each change goes on the timeline with before and after."""
    fields: dict[str, object] = {
        "title": title,
        "summary": summary,
        "severity": severity,
        "severity_reason": reason,
        "archetype": archetype,
        "visibility": visibility,
        "systems": system,
    }
    data = IncidentUpdate.model_validate(
        {
            **{k: v for k, v in fields.items() if v is not None},
            "add_participants": participant or [],
        }
    )
    who = operator()
    with session_scope() as session:
        incident = flows.update_incident(session, incident_id=incident_id, data=data, actor=who)
        audit(session, command="incident update", object=f"incident:{incident_id}")
        described = service.describe(session, [incident])[0]
    if json:
        print_json(described)
        return
    out.print(
        f"incident {described.id}: {described.title} [{described.severity}, "
        f"{described.visibility}] systems: {', '.join(described.systems) or '-'}"
    )


@app.command("status")
def status(
    incident_id: IncidentArg,
    new_status: Annotated[Status, typer.Argument(help="The status to move to.")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    merged_into: Annotated[
        int | None, typer.Option(help="For 'merged': the surviving incident.")
    ] = None,
) -> None:
    """Move an incident through its lifecycle."""
    change = StatusChange(status=new_status, reason=reason, merged_into=merged_into)
    with session_scope() as session:
        incident = flows.change_status(
            session, incident_id=incident_id, change=change, actor=operator()
        )
        audit(session, command="incident status", object=f"incident:{incident_id}")
    out.print(f"incident {incident.id} is now {incident.status}")


@app.command("assign")
def assign(
    incident_id: IncidentArg,
    role: Annotated[IncidentRole, typer.Argument(help="The incident role.")],
    assignee: Annotated[str, typer.Argument(help="Who takes it.")],
) -> None:
    """Assign or reassign an incident role."""
    with session_scope() as session:
        role_service.assign_role(
            session,
            incident_id=incident_id,
            assignment=RoleAssign(role=role, assignee=assignee),
            actor=operator(),
        )
        audit(session, command="incident assign", object=f"incident:{incident_id}")
    out.print(f"{role.value} of incident {incident_id}: {assignee}")


@app.command("note")
def note(
    incident_id: IncidentArg,
    text: Annotated[str, typer.Argument(help="The entry's text.")],
    kind: Annotated[
        EntryKind, typer.Option(help="note, fact, hypothesis, decision, action.")
    ] = EntryKind.note,
) -> None:
    """Add an entry to the timeline."""
    with session_scope() as session:
        row = timeline_service.add_entry(
            session,
            incident_id=incident_id,
            entry=EntryCreate(kind=kind, text=text),
            actor=operator(),
        )
        audit(session, command="incident note", object=f"incident:{incident_id}")
    out.print(f"{kind.value} #{row.id} added to incident {incident_id}")


@app.command("verdict")
def verdict(
    incident_id: IncidentArg,
    entry_id: Annotated[int, typer.Argument(help="The hypothesis's timeline entry number.")],
    outcome: Annotated[Verdict, typer.Argument(help="confirmed or refuted.")],
    text: Annotated[str, typer.Option(help="The evidence for the verdict.")] = "",
) -> None:
    """Mark a hypothesis confirmed or refuted; the hypothesis itself stays as written."""
    with session_scope() as session:
        timeline_service.judge_hypothesis(
            session,
            incident_id=incident_id,
            entry_id=entry_id,
            verdict=VerdictIn(verdict=outcome, text=text),
            actor=operator(),
        )
        audit(session, command="incident verdict", object=f"incident:{incident_id}")
    out.print(f"hypothesis #{entry_id} {outcome.value}")


@task_app.command("add")
def task_add(
    incident_id: IncidentArg,
    title: Annotated[str, typer.Argument(help="What is to be done.")],
    owner: Annotated[str | None, typer.Option(help="Who does it.")] = None,
    due: Annotated[str | None, typer.Option(help="Due date, YYYY-MM-DD.")] = None,
    action_item: Annotated[bool, typer.Option(help="A post-incident action item.")] = False,
) -> None:
    """Add a task (or an action item) to an incident."""
    task = TaskCreate(
        title=title,
        owner=owner,
        due=date.fromisoformat(due) if due else None,
        kind=TaskKind.action_item if action_item else TaskKind.task,
    )
    with session_scope() as session:
        row = task_service.create_task(
            session, incident_id=incident_id, task=task, actor=operator()
        )
        audit(session, command="incident task add", object=f"incident:{incident_id}")
    out.print(f"task #{row.id} added to incident {incident_id}")


@task_app.command("list")
def task_list(incident_id: IncidentArg, json: JsonOpt = False) -> None:
    """List an incident's tasks."""
    with session_scope() as session:
        rows = [
            TaskOut.model_validate(t, from_attributes=True)
            for t in task_service.list_tasks(
                session, incident_id=incident_id, principal=operator()
            )[0]
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "kind", "title", "owner", "due", "state"],
        [(t.id, t.kind, t.title, t.owner, t.due, t.state) for t in rows],
    )


@task_app.command("update")
def task_update(
    incident_id: IncidentArg,
    task_id: Annotated[int, typer.Argument(help="The task's number.")],
    state: Annotated[TaskState | None, typer.Option(help="New state.")] = None,
    owner: Annotated[str | None, typer.Option(help="New owner.")] = None,
    due: Annotated[str | None, typer.Option(help="New due date, YYYY-MM-DD.")] = None,
) -> None:
    """Change a task's state, owner or due date."""
    fields: dict[str, object] = {}
    if state is not None:
        fields["state"] = state
    if owner is not None:
        fields["owner"] = owner
    if due is not None:
        fields["due"] = date.fromisoformat(due)
    with session_scope() as session:
        row = task_service.update_task(
            session,
            incident_id=incident_id,
            task_id=task_id,
            update=TaskUpdate.model_validate(fields),
            actor=operator(),
        )
        audit(session, command="incident task update", object=f"incident:{incident_id}")
    out.print(f"task #{row.id}: {row.state}, owner {row.owner or '-'}, due {row.due or '-'}")
