"""`blastwall signals ...`: list and show signals."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.markup import escape

from blastwall.console import operator, out, print_json, print_table, session_scope
from blastwall.incidents.schemas import Archetype
from blastwall.signals import service
from blastwall.signals.schemas import SignalSeverity, SignalStatus

app = typer.Typer(
    help="Signals: alerts, detector findings and people's reports.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _system(system_id: str | None, system_ref: str | None) -> str:
    if system_id:
        return system_id
    return f"{system_ref} (unregistered)" if system_ref else "-"


@app.command("list")
def list_(
    system: Annotated[
        str | None, typer.Option(help="Only signals about this system (id or name as sent).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    detector: Annotated[str | None, typer.Option(help="Only findings of this detector.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    archetype: Annotated[Archetype | None, typer.Option(help="Only this archetype.")] = None,
    severity: Annotated[SignalSeverity | None, typer.Option(help="Only this severity.")] = None,
    status: Annotated[SignalStatus | None, typer.Option(help="firing or resolved.")] = None,
    held_by: Annotated[
        str | None,
        typer.Option(
            help="Only those held back by this rule: snooze:ID, maintenance:ID, inhibition:NAME."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    json: JsonOpt = False,
) -> None:
    """List signals, newest first."""
    with session_scope() as session:
        rows, _ = service.list_signals(
            session,
            principal=operator(),
            limit=limit,
            system=system,
            source=source,
            detector=detector,
            kind=kind,
            archetype=archetype.value if archetype else None,
            severity=severity.value if severity else None,
            status=status.value if status else None,
            held_by=held_by,
        )
        items = [service.to_out(r) for r in rows]
    if json:
        print_json(items)
        return
    print_table(
        ["id", "received", "source", "kind", "severity", "status", "system", "summary"],
        [
            (
                s.id,
                s.created_at,
                s.source,
                s.kind,
                s.severity,
                s.status,
                _system(s.system_id, s.system_ref),
                f"{s.reference}: {s.summary}" if s.reference else s.summary,
            )
            for s in items
        ],
    )


@app.command("show")
def show(
    signal_id: Annotated[int, typer.Argument(help="The signal's number.", min=1)],
    json: JsonOpt = False,
) -> None:
    """Show one signal with its attributes."""
    with session_scope() as session:
        s = service.to_out(service.get_signal(session, signal_id=signal_id, principal=operator()))
    if json:
        print_json(s)
        return
    title = f"Signal {s.id}" + (f" ({s.reference})" if s.reference else "")
    out.print(f"[bold]{escape(title)}: {escape(s.summary)}[/bold]", highlight=False, markup=True)
    out.print(
        f"{s.severity} · {s.status} · {s.source} / {s.kind} · "
        f"system: {_system(s.system_id, s.system_ref)}"
        + (f" · archetype: {s.archetype.value}" if s.archetype else ""),
    )
    print_table(
        ["received", "starts", "ends", "by", "trace", "conversation", "fingerprint"],
        [
            (
                s.created_at,
                s.starts_at,
                s.ends_at,
                s.created_by,
                s.trace_id,
                s.conversation_id or "-",
                s.fingerprint or "-",
            )
        ],
    )
    if s.group_id or s.candidate_id or s.held_by:
        out.print(
            f"group {s.group_id or '-'} · candidate {s.candidate_id or '-'} · "
            f"held by {s.held_by or '-'}",
            highlight=False,
        )
    if s.detector:
        out.print(
            f"detector {s.detector} {s.detector_version} · confidence {s.confidence} · "
            f"OWASP {', '.join(s.owasp or []) or '-'} · ATLAS {', '.join(s.atlas or []) or '-'}"
            f" · interactions {', '.join(map(str, s.interaction_ids or [])) or '-'}",
            highlight=False,
        )
    if s.excerpt:
        out.print(f"excerpt: {s.excerpt}", highlight=False)
    if s.attributes:
        out.print(
            orjson.dumps(s.attributes, option=orjson.OPT_INDENT_2).decode(),
            highlight=False,
        )
