"""`blastwall hunt`: a retro-hunt over stored interactions from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from blastwall.console import audit, open_database, operator, out, print_json, print_table
from blastwall.db import dispose
from blastwall.errors import InvalidInput, Problem
from blastwall.evidence import flows, hunt
from blastwall.evidence.schemas import HuntIn, HuntMatchOut, HuntOut
from blastwall.evidence.store import Vault
from blastwall.settings import get_settings

__all__ = ["hunt_command"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            "The --since time is not understood.",
            [Problem("--since", "use ISO 8601, e.g. 2026-11-01 or 2026-11-01T08:00:00Z")],
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def hunt_command(
    pattern: Annotated[str | None, typer.Option(help="A regular expression (Python).")] = None,
    text: Annotated[str | None, typer.Option(help="A literal string.")] = None,
    canary: Annotated[int | None, typer.Option(help="A canary token's id.")] = None,
    system: Annotated[str | None, typer.Option(help="Only this AI system.")] = None,
    since: Annotated[str | None, typer.Option(help="Only from this time on (ISO 8601).")] = None,
    incident: Annotated[
        int | None, typer.Option(help="Attach the results to this incident as evidence.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Matches to print.", min=0)] = 20,
    json: JsonOpt = False,
) -> None:
    """Search stored interactions (inputs, outputs, tool arguments, retrieved content) for a
    pattern, a text or a canary token; list the conversations, users and tool side effects."""
    data = HuntIn(pattern=pattern, text=text, canary=canary, system=system, since=_since(since))
    db = open_database()
    try:
        with db.transaction() as session:
            row = hunt.create_hunt(session, data=data, actor=operator())
            audit(session, command="hunt", object=f"hunt:{row.id}")
        with Progress(
            TextColumn("hunt {task.fields[hunt]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=True,
            disable=json or not out.is_terminal,
        ) as bar:
            task = bar.add_task("hunt", total=None, hunt=row.id)
            done = hunt.run_hunt(
                db,
                hunt_id=row.id,
                workers=get_settings().hunt_workers,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
        with db.transaction() as session:
            matches, _ = hunt.list_matches(
                session, hunt_id=row.id, principal=operator(), limit=max(limit, 1)
            )
            shown = [HuntMatchOut.model_validate(m) for m in matches][:limit]
            result = HuntOut.model_validate(done)
            if incident is not None:
                flows.attach_hunt(
                    session,
                    vault=Vault.of(get_settings()),
                    hunt_id=row.id,
                    incident_id=incident,
                    actor=operator(),
                )
    finally:
        dispose(db.engine)
    if json:
        print_json({"hunt": result, "matches": shown})
        return
    out.print(
        f"hunt {result.id}: {result.match_count} matches in {result.scanned} interactions "
        f"({result.method})" + (f"; {result.error}" if result.error else "")
    )
    print_table(
        ["interaction", "at", "system", "conversation", "user", "field", "excerpt"],
        [
            (m.interaction_id, m.at, m.system_id, m.conversation_id, m.user_id, m.field, m.excerpt)
            for m in shown
        ],
    )
    summary = result.summary
    for title, key, label in (
        ("conversations", "conversations", "id"),
        ("users", "users", "id"),
        ("tool side effects", "tool_side_effects", "tool"),
    ):
        entries = summary.get(key) or []
        if entries:
            out.print(f"{title}: " + ", ".join(str(e[label]) for e in entries[:20]))
    if incident is not None:
        out.print(f"attached to incident {incident}")
