"""`blastwall playbook`: the library, CACAO export, and an incident's checklist."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.containment.commands import parse_params
from blastwall.containment.policy import load_policy
from blastwall.playbooks import flows, service
from blastwall.playbooks.cacao import to_cacao
from blastwall.playbooks.library import Library, library
from blastwall.playbooks.schemas import (
    ChecklistStepOut,
    PlaybookSummary,
    StepCompletion,
    StepRun,
)
from blastwall.settings import get_settings

app = typer.Typer(help="Playbooks: the library, CACAO export, incident checklists.")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IncidentArg = Annotated[int, typer.Argument(help="The incident's number.", min=1)]
StepArg = Annotated[
    str,
    typer.Argument(
        help="The step: its number in the checklist (as listed), PLAYBOOK:NUMBER, or its "
        "name (the step id, or a unique prefix of its id or title, any case)."
    ),
]
PlaybookOpt = Annotated[
    str | None,
    typer.Option(help="The playbook whose checklist the number is in, when several are attached."),
]


def _library() -> Library:
    return library(get_settings().playbook_dir)


@app.command("list")
def list_playbooks(json: JsonOpt = False) -> None:
    """The playbooks: shipped, and the organisation's (BLASTWALL_PLAYBOOK_DIR)."""
    found = _library()
    rows = [
        PlaybookSummary.of(p, custom=p.id in found.custom)
        for p in sorted(found.playbooks.values(), key=lambda p: p.id)
    ]
    if json:
        print_json([r.model_dump() for r in rows])
        return
    print_table(
        ["id", "name", "archetypes", "steps", "version", "source"],
        [
            (
                r.id,
                r.name,
                r.archetypes,
                r.steps,
                r.version,
                "own" if r.custom else "shipped",
            )
            for r in rows
        ],
    )


@app.command("show")
def show(
    playbook_id: Annotated[str, typer.Argument(help="The playbook's id.")], json: JsonOpt = False
) -> None:
    """A playbook's steps with their kinds and conditions."""
    playbook = _library().get(playbook_id)
    if json:
        print_json(playbook.model_dump(mode="json"))
        return
    out.print(
        f"[bold]{escape(playbook.name)}[/bold] "
        f"({escape(playbook.id)}, version {escape(str(playbook.version))})",
        markup=True,
    )
    if playbook.description:
        out.print(playbook.description, highlight=False)
    rows = []
    for number, step in enumerate(playbook.steps, start=1):
        what = step.control.value if step.control else ""
        if step.options:
            what = (
                " / ".join(step.options) + f" ({step.decided_by.value if step.decided_by else ''})"
            )
        when = ", ".join(
            [*(s.value for s in step.when.severity), *(t.value for t in step.when.system_types)]
        )
        rows.append((number, step.id, step.kind.value, step.title, what, when or "always"))
    print_table(["#", "step", "kind", "title", "control / options", "when"], rows)


@app.command("export")
def export(
    playbook_id: Annotated[str, typer.Argument(help="The playbook's id.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export a playbook as OASIS CACAO 2.0 JSON."""
    document = orjson.dumps(to_cacao(_library().get(playbook_id)), option=orjson.OPT_INDENT_2)
    if output is None:
        typer.echo(document.decode())
        return
    output.write_bytes(document + b"\n")
    out.print(f"CACAO 2.0 playbook written to {output}")


@app.command("attach")
def attach(
    incident_id: IncidentArg,
    playbook: Annotated[
        str | None, typer.Option(help="The playbook's id; by default the archetype's.")
    ] = None,
) -> None:
    """Attach a playbook to an incident: its applicable steps become the checklist."""
    with session_scope() as session:
        rows = service.attach(
            session,
            incident_id=incident_id,
            library=_library(),
            playbook_id=playbook,
            actor=operator(),
        )
        audit(session, command="playbook attach", object=f"incident:{incident_id}")
        attached = [ChecklistStepOut.model_validate(r) for r in rows]
    out.print(f"incident {incident_id}: {len(attached)} checklist steps")
    _print_checklist(attached)


@app.command("checklist")
def show_checklist(incident_id: IncidentArg, json: JsonOpt = False) -> None:
    """The checklist of the playbooks attached to an incident."""
    with session_scope() as session:
        rows = service.checklist(session, incident_id=incident_id, principal=operator())
        items = [ChecklistStepOut.model_validate(r) for r in rows]
    if json:
        print_json([i.model_dump() for i in items])
        return
    _print_checklist(items)


@app.command("done")
def done(
    incident_id: IncidentArg,
    step: StepArg,
    outcome: Annotated[str | None, typer.Option(help="The option chosen (decision steps).")] = None,
    note: Annotated[str | None, typer.Option(help="What was done or found.")] = None,
    skip: Annotated[bool, typer.Option("--skip", help="Skip the step instead.")] = False,
    playbook: PlaybookOpt = None,
) -> None:
    """Mark a checklist step done (or skipped); it goes on the incident's timeline."""
    completion = StepCompletion(outcome=outcome, note=note, skip=skip)
    who = operator()
    with session_scope() as session:
        found = service.find_step(
            session, incident_id=incident_id, step=step, principal=who, playbook=playbook
        )
        row = service.complete(
            session,
            incident_id=incident_id,
            item_id=found.id,
            completion=completion,
            actor=who,
        )
        audit(session, command="playbook done", object=f"incident:{incident_id}")
        name, state, result = f"{row.playbook_id}:{row.position}", row.state, row.outcome
        title = row.title
    out.print(f"step {name} ({title}): {state}" + (f" → {result}" if result else ""))


@app.command("run")
def run(
    incident_id: IncidentArg,
    step: StepArg,
    reason: Annotated[str, typer.Option(help="Why; goes on the timeline.")],
    param: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE for the control (VALUE read as JSON when it is)."),
    ] = None,
    system: Annotated[str | None, typer.Option(help="The AI system, if several.")] = None,
    expires_at: Annotated[
        datetime | None, typer.Option(help="When it lapses (UTC unless a timezone is given).")
    ] = None,
    playbook: PlaybookOpt = None,
) -> None:
    """Run a containment step of the checklist: apply its control through containment."""
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    settings = get_settings()
    body = StepRun(
        reason=reason, params=parse_params(param or []), system=system, expires_at=expires_at
    )
    who = operator()
    with session_scope() as session:
        found = service.find_step(
            session, incident_id=incident_id, step=step, principal=who, playbook=playbook
        )
        row, action, message = flows.run_containment(
            session,
            incident_id=incident_id,
            item_id=found.id,
            run=body,
            actor=who,
            policy=load_policy(settings.containment_policy),
            snapshot_interactions=settings.containment_snapshot_interactions,
        )
        audit(session, command="playbook run", object=f"incident:{incident_id}/action:{action.id}")
        name, step_state = f"{row.playbook_id}:{row.position}", row.state
        number, state = action.id, action.state
    waits = "done" if step_state == "done" else "ticked when the action is applied"
    out.print(f"step {name}: {waits}; containment action {number} ({state}): {message}")


def _print_checklist(items: list[ChecklistStepOut]) -> None:
    rows = []
    for item in items:
        what = item.control or ""
        if item.options:
            what = " / ".join(item.options) + f" ({item.decided_by})"
        state = item.state + (f" → {item.outcome}" if item.outcome else "")
        if item.action_id is not None:
            state += f" (action {item.action_id}" + (" waiting)" if item.state == "open" else ")")
        rows.append(
            (item.position, item.playbook_id, item.step_id, item.kind, item.title, what, state)
        )
    print_table(["#", "playbook", "name", "kind", "step", "control / options", "state"], rows)
