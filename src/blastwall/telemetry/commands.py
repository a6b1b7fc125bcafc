"""`blastwall telemetry ...` (ingest keys, unregistered services) and `blastwall interactions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.telemetry import service
from blastwall.telemetry.schemas import IngestKeyOut, InteractionOut, UnregisteredOut

app = typer.Typer(help="Telemetry: ingest keys, unregistered AI services.", no_args_is_help=True)
key_app = typer.Typer(help="Per-system ingest keys for OTLP senders.", no_args_is_help=True)
app.add_typer(key_app, name="key")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@key_app.command("create")
def key_create(system: Annotated[str, typer.Option(help="The system the key sends for.")]) -> None:
    """Issue an ingest key (header X-Blastwall-Ingest-Key); printed once."""
    with session_scope() as session:
        row, secret = service.create_key(session, system_id=system, created_by=operator().name)
        audit(session, command="telemetry key create", object=f"ingest_key:{row.id}")
    typer.echo(secret)
    typer.echo(f"ingest key {row.id} for {system}; store it now, it is not shown again", err=True)


@key_app.command("list")
def key_list(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    json: JsonOpt = False,
) -> None:
    """List ingest keys (never their secrets)."""
    with session_scope() as session:
        rows = [
            IngestKeyOut.model_validate(r) for r in service.list_keys(session, system_id=system)
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "system", "prefix", "created", "revoked"],
        [(k.id, k.system_id, k.prefix + "…", k.created_at, k.revoked_at) for k in rows],
    )


@key_app.command("revoke")
def key_revoke(key_id: Annotated[int, typer.Argument(help="The key's id.")]) -> None:
    """Revoke an ingest key: senders using it get 401 at once."""
    with session_scope() as session:
        row = service.revoke_key(session, key_id=key_id)
        audit(session, command="telemetry key revoke", object=f"ingest_key:{row.id}")
    out.print(f"ingest key {row.id} ({row.system_id}) revoked")


@app.command("unregistered")
def unregistered(json: JsonOpt = False) -> None:
    """AI services sending telemetry that the inventory does not know (shadow AI)."""
    with session_scope() as session:
        rows = [UnregisteredOut.model_validate(r) for r in service.unregistered_services(session)]
    if json:
        print_json(rows)
        return
    print_table(
        ["service.name", "interactions", "first seen", "last seen"],
        [(r.service_name, r.interactions, r.first_seen, r.last_seen) for r in rows],
    )


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def interactions(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    conversation: Annotated[str | None, typer.Option(help="Only this conversation.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this end user.")] = None,
    operation: Annotated[str | None, typer.Option(help="chat, execute_tool, ...")] = None,
    model: Annotated[str | None, typer.Option(help="Requested or response model.")] = None,
    tool: Annotated[str | None, typer.Option(help="Only calls of this tool.")] = None,
    trace: Annotated[str | None, typer.Option(help="Only this trace id.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Started at or after (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Started before (UTC).")] = None,
    unregistered: Annotated[bool, typer.Option(help="Only unknown systems.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json: JsonOpt = False,
) -> None:
    """List GenAI interactions (model calls, tool calls, agent steps), newest first."""
    where = service.InteractionFilter(
        system_id=system,
        unregistered=unregistered,
        conversation_id=conversation,
        user_id=user,
        operation=operation,
        model=model,
        tool=tool,
        trace_id=trace,
        since=_utc(since),
        until=_utc(until),
    )
    with session_scope() as session:
        rows, _ = service.list_interactions(session, where=where, limit=limit)
        items = [InteractionOut.model_validate(r) for r in rows]
    if json:
        print_json([i.model_dump(mode="json", by_alias=True) for i in items])
        return
    print_table(
        ["id", "start", "system", "operation", "model", "tool", "conversation", "user", "ms"],
        [
            (
                i.id,
                i.start_time,
                i.system_id or f"?{i.service_name}",
                i.operation,
                i.response_model or i.request_model,
                i.tool_name,
                i.conversation_id,
                i.user_id,
                round(i.latency_ms, 1),
            )
            for i in items
        ],
    )
