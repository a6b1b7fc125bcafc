"""`blastwall update ...`: status updates in the "what we know" form: draft, edit, preview,
publish, approve, list, show, no-change, snooze, remind."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from blastwall.comms.audiences import AudiencePolicy, current_audiences
from blastwall.comms.flows import cadence as cadence_flows
from blastwall.comms.flows import updates as flows
from blastwall.comms.models.updates import ComponentStatus, Impact, Phase, StatusUpdate
from blastwall.comms.service import updates as service
from blastwall.comms.update_schemas import SECTIONS, SnoozeIn, UpdateEdit, UpdateOut
from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.settings import get_settings

__all__ = ["app"]

app = typer.Typer(
    help='Status updates in the "what we know" form: draft, edit, preview, publish, approve.',
    no_args_is_help=True,
)

IncidentArg = Annotated[int, typer.Argument(help="The incident's number.", min=1)]
UpdateArg = Annotated[int, typer.Argument(help="The status update's number.", min=1)]
AudienceOpt = Annotated[
    str, typer.Option("--audience", help="responders, executives, customers, regulators, ...")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Lines = Annotated[list[str] | None, typer.Option(help="An item (repeat); replaces the section.")]


def _print(update: StatusUpdate | UpdateOut, json: bool) -> None:
    shown = update if isinstance(update, UpdateOut) else service.to_out(update)
    if json:
        print_json(shown)
        return
    out.print(
        f"update {shown.id} to {shown.audience} of incident {shown.incident_id}: {shown.state}"
        f" · {shown.phase} · impact {shown.impact} · {shown.component_status}"
    )
    out.print(shown.title)
    for name, heading in SECTIONS.items():
        lines = getattr(shown, name)
        out.print(f"\n{heading}:")
        out.print("\n".join(f"- {line}" for line in lines) or "None")
    when = shown.next_update_at
    out.print(f"\nNext update: {when.isoformat() if when else 'None'}")


def _policy() -> AudiencePolicy:
    """The audiences in force (the file `BLASTWALL_AUDIENCE_POLICY` names, or the defaults)."""
    return current_audiences(get_settings().audience_policy)


@app.command("draft")
def draft(incident_id: IncidentArg, audience: AudienceOpt, json: JsonOpt = False) -> None:
    """Draft an update to an audience, filled from the incident itself."""
    with session_scope() as session:
        update = flows.draft_update(
            session,
            incident_id=incident_id,
            audience=audience,
            actor=operator(),
            policy=_policy(),
        )
        audit(session, command="update draft", object=f"update:{update.id}")
        shown = service.to_out(update)
    _print(shown, json)


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"Cannot read {path}: {exc}. Give a YAML mapping of sections.") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{path} must be a YAML mapping: title, what_happened, what_we_are_testing, "
            "what_we_are_doing, what_we_dont_know (lists of lines), next_update_at, phase, "
            "impact, component_status."
        )
    return data


@app.command("edit")
def edit(
    update_id: UpdateArg,
    file: Annotated[
        Path | None, typer.Option("--file", help="A YAML mapping of the parts to change.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="The update's title.")] = None,
    what_happened: Lines = None,
    what_we_are_testing: Lines = None,
    what_we_are_doing: Lines = None,
    what_we_dont_know: Lines = None,
    next_update_at: Annotated[
        datetime | None, typer.Option(help="When the next update comes (UTC).")
    ] = None,
    phase: Annotated[Phase | None, typer.Option(help="Where the response stands.")] = None,
    impact: Annotated[Impact | None, typer.Option(help="How bad it is.")] = None,
    component_status: Annotated[
        ComponentStatus | None, typer.Option(help="What the update says of the systems.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Change a draft: options per section (each replaces the section), or --file YAML."""
    data: dict[str, Any] = _from_file(file) if file else {}
    given = {
        "title": title,
        "what_happened": what_happened,
        "what_we_are_testing": what_we_are_testing,
        "what_we_are_doing": what_we_are_doing,
        "what_we_dont_know": what_we_dont_know,
        "phase": phase,
        "impact": impact,
        "component_status": component_status,
    }
    data.update({k: v for k, v in given.items() if v is not None})
    if next_update_at is not None:
        when = next_update_at
        data["next_update_at"] = when if when.tzinfo else when.replace(tzinfo=utcnow().tzinfo)
    try:
        change = UpdateEdit.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "The edit is invalid.",
            [Problem(field_path(e["loc"]), e["msg"]) for e in exc.errors()],
        ) from None
    with session_scope() as session:
        incident_id = service.incident_of(session, update_id=update_id)
        update = flows.edit_update(
            session, incident_id=incident_id, update_id=update_id, edit=change, actor=operator()
        )
        audit(session, command="update edit", object=f"update:{update_id}")
        shown = service.to_out(update)
    _print(shown, json)


@app.command("preview")
def preview(update_id: UpdateArg, json: JsonOpt = False) -> None:
    """Show the audience's rendering beside the responders', and what blocks publishing."""
    with session_scope() as session:
        incident_id = service.incident_of(session, update_id=update_id)
        shown = flows.preview_update(
            session,
            incident_id=incident_id,
            update_id=update_id,
            principal=operator(),
            policy=_policy(),
        )
    if json:
        print_json(shown)
        return
    for rendering in (shown.audience, shown.responders):
        out.print(f"=== {rendering.audience} ===")
        out.print(rendering.body)
        if rendering.redacted:
            out.print(f"(redacted: {', '.join(rendering.redacted)})")
        out.print("")
    if shown.problems:
        out.print("Blocks publishing:")
        for problem in shown.problems:
            out.print(f"  {problem.field}: {problem.message}")
    else:
        out.print("Nothing blocks publishing.")


@app.command("publish")
def publish(update_id: UpdateArg, json: JsonOpt = False) -> None:
    """Publish an update (one that needs approval then awaits a second person's)."""
    with session_scope() as session:
        incident_id = service.incident_of(session, update_id=update_id)
        update = flows.publish_update(
            session,
            incident_id=incident_id,
            update_id=update_id,
            actor=operator(),
            policy=_policy(),
        )
        audit(session, command="update publish", object=f"update:{update_id}")
        shown = service.to_out(update)
    _print(shown, json)


@app.command("approve")
def approve(update_id: UpdateArg, json: JsonOpt = False) -> None:
    """Approve an update awaiting approval, which publishes it (not by its author)."""
    with session_scope() as session:
        incident_id = service.incident_of(session, update_id=update_id)
        update = flows.approve_update(
            session,
            incident_id=incident_id,
            update_id=update_id,
            actor=operator(),
            policy=_policy(),
        )
        audit(session, command="update approve", object=f"update:{update_id}")
        shown = service.to_out(update)
    _print(shown, json)


@app.command("list")
def list_(
    incident_id: IncidentArg,
    audience: Annotated[str | None, typer.Option(help="Only this audience.")] = None,
    json: JsonOpt = False,
) -> None:
    """List an incident's status updates, oldest first."""
    with session_scope() as session:
        rows = [
            service.to_out(r)
            for r in flows.list_updates(
                session, incident_id=incident_id, principal=operator(), audience=audience
            )
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "audience", "state", "phase", "title", "published", "next update"],
        [
            (r.id, r.audience, r.state, r.phase, r.title, r.published_at, r.next_update_at)
            for r in rows
        ],
    )


@app.command("show")
def show(update_id: UpdateArg, json: JsonOpt = False) -> None:
    """Show a status update."""
    with session_scope() as session:
        incident_id = service.incident_of(session, update_id=update_id)
        shown = service.to_out(
            flows.get_update(
                session, incident_id=incident_id, update_id=update_id, principal=operator()
            )
        )
    _print(shown, json)


@app.command("no-change")
def no_change(
    incident_id: IncidentArg,
    audience: AudienceOpt,
    next_update_at: Annotated[
        datetime | None, typer.Option(help="When the next update comes; default: the cadence.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Publish the audience's last update again, with a new next update time."""
    when = next_update_at
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=utcnow().tzinfo)
    with session_scope() as session:
        update = flows.no_change_update(
            session,
            incident_id=incident_id,
            audience=audience,
            actor=operator(),
            policy=_policy(),
            next_update_at=when,
        )
        audit(session, command="update no-change", object=f"update:{update.id}")
        shown = service.to_out(update)
    _print(shown, json)


@app.command("snooze")
def snooze(
    incident_id: IncidentArg,
    audience: AudienceOpt,
    until: Annotated[datetime, typer.Option(help="When the reminders resume (UTC).")],
    reason: Annotated[str, typer.Option(help="Why, for the timeline.")],
) -> None:
    """Hold the reminders for updates to an audience until a time."""
    when = until if until.tzinfo else until.replace(tzinfo=utcnow().tzinfo)
    body = SnoozeIn(audience=audience, until=when, reason=reason)
    with session_scope() as session:
        row = cadence_flows.snooze(
            session,
            incident_id=incident_id,
            body=body,
            actor=operator(),
            policy=_policy(),
        )
        audit(session, command="update snooze", object=f"incident:{incident_id}")
        out.print(f"updates to {row.audience} of incident {incident_id} snoozed until {row.until}")


@app.command("remind")
def remind() -> None:
    """Fire the reminders for updates that are due or overdue (one tick of the scheduler)."""
    with session_scope() as session:
        fired = cadence_flows.tick(session, utcnow(), policy=_policy())
        if fired:
            audit(session, command="update remind", object=None)
    out.print(f"{fired} reminder{'s' if fired != 1 else ''} fired")
