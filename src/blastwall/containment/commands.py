"""`blastwall contain`, `blastwall containment ...` and `blastwall affected`."""

from __future__ import annotations

import json as jsonlib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, get_origin

import typer

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.containment import affected as hunt
from blastwall.containment import approvals as tool_approvals
from blastwall.containment import flows, held, service
from blastwall.containment.policy import load_policy
from blastwall.containment.schemas import (
    PARAMS,
    Acknowledgement,
    ActionIn,
    ActionState,
    ToolDecisionIn,
)
from blastwall.errors import InvalidInput, Problem
from blastwall.incidents import service as incidents
from blastwall.inventory.schemas import Control
from blastwall.settings import get_settings

app = typer.Typer(
    help="Containment actions of incidents: list, approve, reject, revert; control state.",
    no_args_is_help=True,
)

IncidentArg = Annotated[int, typer.Argument(help="The incident's number.", min=1)]
ActionArg = Annotated[int, typer.Argument(help="The action's number.", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_params(values: list[str], control: Control | None = None) -> dict[str, Any]:
    """KEY=VALUE options as a dict, typed by the control's parameter schema: a text parameter
    stays text (`version=13` is the version "13"), numbers and booleans are read by the
    schema itself, and a parameter that takes a list takes each value given for it
    (`--param patterns=a --param patterns=b`, or one JSON list). Without a control, VALUE is
    read as JSON when it is."""
    fields = PARAMS[control].model_fields if control is not None else {}
    lists = {n for n, f in fields.items() if get_origin(f.annotation) is list}
    params: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key:
            raise InvalidInput(
                "A --param is KEY=VALUE.", [Problem("--param", f"'{value}' has no '='")]
            )
        parsed: Any = raw
        if control is None or key in lists:
            try:
                parsed = jsonlib.loads(raw)
            except ValueError:
                parsed = raw
            if key in lists and not isinstance(parsed, list):
                parsed = [raw]
        if key in lists or (control is None and key in params):
            before = params.get(key, [])
            before = before if isinstance(before, list) else [before]
            parsed = before + (parsed if isinstance(parsed, list) else [parsed])
        elif key in params:
            raise InvalidInput(
                f"--param {key} is given twice.", [Problem(f"--param {key}", "give it once")]
            )
        params[key] = parsed
    return params


def _verdict(action: Any) -> str:
    """The verification of an action in words: `unverified (no traffic)` and the like."""
    if action.verification is None:
        return "-"
    if action.verification == "unverified":
        return "unverified (no traffic)"
    return str(action.verification)


def _show(rows: list[Any]) -> None:
    print_table(
        ["id", "state", "verified", "system", "control", "params", "by", "expires", "reason"],
        [
            (
                a.id,
                a.state,
                _verdict(a),
                a.system_id,
                a.control,
                jsonlib.dumps(a.params),
                a.requested_by,
                a.expires_at,
                a.reason,
            )
            for a in rows
        ],
    )


def contain(
    incident: IncidentArg,
    control: Annotated[Control, typer.Option(help="The control to apply.")],
    reason: Annotated[str, typer.Option(help="Why; goes on the timeline.")],
    param: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE (VALUE read as JSON when it is), e.g. tool=issue_refund."),
    ] = None,
    system: Annotated[str | None, typer.Option(help="The AI system, if several.")] = None,
    expires_at: Annotated[
        datetime | None, typer.Option(help="When it lapses (UTC unless a timezone is given).")
    ] = None,
    rollback: Annotated[
        bool,
        typer.Option(
            help="pin_prompt_version / pin_model_version: pin the version current before "
            "the incident's first signal."
        ),
    ] = False,
    grace: Annotated[
        int | None,
        typer.Option(
            help="Seconds the behaviour may go on before it is a containment breach "
            "(default: BLASTWALL_CONTAINMENT_GRACE_SECONDS).",
            min=1,
        ),
    ] = None,
    acknowledgement: Annotated[
        Acknowledgement | None,
        typer.Option(help="AI Act Art. 73(6): authority_informed or needed_to_stop_harm."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Apply a control to an incident's AI system (snapshot first, then the change, then the
    timeline entry)."""
    settings = get_settings()
    if expires_at is not None and expires_at.tzinfo is None:
        from datetime import UTC

        expires_at = expires_at.replace(tzinfo=UTC)
    data = ActionIn(
        control=control,
        params=parse_params(param or [], control),
        reason=reason,
        expires_at=expires_at,
        system=system,
        rollback=rollback,
        grace_seconds=grace,
        acknowledgement=acknowledgement,
    )
    with session_scope() as session:
        action, message = flows.request_action(
            session,
            incident_id=incident,
            data=data,
            actor=operator(),
            policy=load_policy(settings.containment_policy),
            snapshot_interactions=settings.containment_snapshot_interactions,
            grace_seconds=settings.containment_grace_seconds,
        )
        audit(session, command="contain", object=f"incident:{incident}/action:{action.id}")
        result = service.action_out(action, message)
    if json:
        print_json(result)
    else:
        out.print(f"action {result.id} ({result.state.value}): {message}")


@app.command("list")
def list_(
    incident: IncidentArg,
    state: Annotated[ActionState | None, typer.Option(help="Only this state.")] = None,
    json: JsonOpt = False,
) -> None:
    """The incident's containment actions, oldest first."""
    with session_scope() as session:
        found = incidents.get_incident(session, incident_id=incident, principal=operator())
        rows, _ = service.list_actions(
            session, incident_id=found.id, limit=500, state=state.value if state else None
        )
        items = [service.action_out(r) for r in rows]
    if json:
        print_json(items)
    else:
        _show(items)


@app.command()
def approve(
    incident: IncidentArg,
    action: ActionArg,
    note: Annotated[str, typer.Option(help="A note for the timeline.")] = "",
) -> None:
    """Approve an action that waits (a second person: not the one who asked)."""
    settings = get_settings()
    with session_scope() as session:
        row = flows.approve_action(
            session,
            incident_id=incident,
            action_id=action,
            actor=operator(),
            policy=load_policy(settings.containment_policy),
            snapshot_interactions=settings.containment_snapshot_interactions,
            note=note,
        )
        audit(session, command="containment approve", object=f"incident:{incident}/action:{action}")
    out.print(f"action {row.id} approved and applied")


@app.command()
def reject(
    incident: IncidentArg,
    action: ActionArg,
    note: Annotated[str, typer.Option(help="Why, for the timeline.")] = "",
) -> None:
    """Refuse an action that waits for approval."""
    settings = get_settings()
    with session_scope() as session:
        flows.reject_action(
            session,
            incident_id=incident,
            action_id=action,
            actor=operator(),
            policy=load_policy(settings.containment_policy),
            note=note,
        )
        audit(session, command="containment reject", object=f"incident:{incident}/action:{action}")
    out.print(f"action {action} rejected")


@app.command()
def revert(
    incident: IncidentArg,
    action: ActionArg,
    reason: Annotated[str, typer.Option(help="Why; goes on the timeline.")],
) -> None:
    """Lift an active control (or withdraw a request that waits)."""
    settings = get_settings()
    with session_scope() as session:
        row = flows.revert_action(
            session,
            incident_id=incident,
            action_id=action,
            actor=operator(),
            reason=reason,
            snapshot_interactions=settings.containment_snapshot_interactions,
        )
        audit(session, command="containment revert", object=f"incident:{incident}/action:{action}")
    out.print(f"action {row.id} {row.state}")


@app.command()
def state(
    system: Annotated[str, typer.Argument(help="The AI system's id.")], json: JsonOpt = False
) -> None:
    """The controls in force on a system."""
    with session_scope() as session:
        current = service.control_state(session, system_id=system, reader=operator())
    if json:
        print_json(current)
        return
    out.print(f"{system}: revision {current.revision}")
    print_table(
        ["action", "control", "params", "incident", "set by", "set at", "expires", "reason"],
        [
            (
                c.action_id,
                c.control,
                jsonlib.dumps(c.params),
                c.incident_id,
                c.set_by,
                c.set_at,
                c.expires_at,
                c.reason,
            )
            for c in current.controls
        ],
    )


@app.command("approvals")
def list_approvals(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    pending: Annotated[bool, typer.Option(help="Only those still waiting.")] = False,
    json: JsonOpt = False,
) -> None:
    """Tool calls that guards asked a person to approve, newest first."""
    with session_scope() as session:
        rows, _ = service.list_tool_approvals(session, limit=500, system_id=system, pending=pending)
        items = [service.tool_approval_out(r, show_arguments=True) for r in rows]
    if json:
        print_json(items)
        return
    print_table(
        ["id", "state", "system", "tool", "arguments", "agent", "asked at", "until"],
        [
            (
                a.id,
                a.state,
                a.system_id,
                a.tool,
                jsonlib.dumps(a.arguments),
                a.agent,
                a.requested_at,
                a.expires_at,
            )
            for a in items
        ],
    )


@app.command()
def decide(
    approval: Annotated[int, typer.Argument(help="The approval's number.", min=1)],
    approve: Annotated[bool, typer.Option("--approve/--deny", help="Allow or refuse the call.")],
    note: Annotated[str, typer.Option(help="A note for the timeline.")] = "",
) -> None:
    """Approve or deny a tool call a guard waits on."""
    settings = get_settings()
    with session_scope() as session:
        row = tool_approvals.decide_tool_approval(
            session,
            approval_id=approval,
            decision=ToolDecisionIn(approve=approve, note=note),
            actor=operator(),
            policy=load_policy(settings.containment_policy),
        )
        audit(session, command="containment decide", object=f"approval:{approval}")
    out.print(f"call of {row.tool} on {row.system_id} {row.state}")


@app.command("held")
def list_held(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    state: Annotated[str | None, typer.Option(help="held, released or discarded.")] = "held",
    json: JsonOpt = False,
) -> None:
    """Outputs guards held back under quarantine, newest first."""
    with session_scope() as session:
        rows, _ = held.list_held(
            session, limit=500, cursor=None, system_id=system, state=state, reader=operator()
        )
        items = [held.to_out(row, incident, full=True) for row, incident in rows]
    if json:
        print_json([i.model_dump() for i in items])
        return
    print_table(
        ["id", "state", "system", "incident", "held at", "output"],
        [
            (i.id, i.state, i.system_id, i.incident_id, i.held_at, (i.text or "")[:200])
            for i in items
        ],
    )


@app.command()
def review(
    held_id: Annotated[int, typer.Argument(help="The held output's number.", min=1)],
    release: Annotated[
        bool, typer.Option("--release/--discard", help="Let it be delivered, or discard it.")
    ],
    note: Annotated[str, typer.Option(help="A note for the timeline.")] = "",
) -> None:
    """Release or discard an output held for review."""
    settings = get_settings()
    with session_scope() as session:
        row, _ = held.decide(
            session,
            held_id=held_id,
            decision=held.HeldDecision(release=release, note=note),
            actor=operator(),
            policy=load_policy(settings.containment_policy),
        )
        audit(session, command="containment review", object=f"held:{held_id}")
        state = row.state
    out.print(f"held output {held_id} {state}")


def affected(
    incident: IncidentArg,
    since: Annotated[
        datetime | None, typer.Option(help="From (UTC); default: a day before detection.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Until (UTC); default: now.")] = None,
    tool: Annotated[
        str | None,
        typer.Option(help="Only calls of this tool, in any spelling (issue-refund, issue_refund)."),
    ] = None,
    pattern: Annotated[
        str | None,
        typer.Option(
            help="The conversations with an interaction whose content matches this regex."
        ),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all", help="All the systems' traffic, not only the conversations of the signals."
        ),
    ] = False,
    format: Annotated[str, typer.Option(help="json or csv.")] = "json",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    quarantine: Annotated[
        str | None, typer.Option(help="Mark these outputs quarantined, for this reason.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 10_000,
) -> None:
    """Conversations, users, tool calls and side effects (e.g. refunds issued) the incident
    touched on its systems in its time range, for the business owners: the conversations
    its signals name, or those matching --pattern, or with --all everything. The totals per
    tool (side effects, sums of their amounts per currency) head it, on stderr too."""
    from datetime import UTC

    if format not in ("json", "csv"):
        raise InvalidInput("Unknown format.", [Problem("--format", "use json or csv")])
    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until and until.tzinfo is None else until
    with session_scope() as session:
        found = hunt.find_affected(
            session,
            incident_id=incident,
            principal=operator(),
            since=since,
            until=until,
            tool=tool,
            pattern=pattern,
            everything=everything,
            limit=limit,
        )
        if quarantine:
            marked = hunt.quarantine_affected(
                session, affected=found, principal=operator(), reason=quarantine
            )
            audit(session, command="affected --quarantine", object=f"incident:{incident}")
            for row in found.interactions:
                row.quarantined = True
            typer.echo(f"{len(marked)} output(s) newly marked quarantined", err=True)
    for line in hunt.totals_lines(found):
        typer.echo(line, err=True)
    text = hunt.to_csv(found) if format == "csv" else found.model_dump_json(indent=2) + "\n"
    if output:
        output.write_text(text)
        typer.echo(
            f"{len(found.interactions)} interaction(s), {len(found.conversations)} "
            f"conversation(s), {len(found.users)} user(s), {len(found.calls)} tool call(s), "
            f"{len(found.side_effects)} side effect(s) written to {output}",
            err=True,
        )
    else:
        typer.echo(text, nl=False)
