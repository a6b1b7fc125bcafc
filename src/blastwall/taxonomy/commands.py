"""`blastwall taxonomy`: the frameworks' entries, and one id explained."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from blastwall.console import out, print_json, print_table
from blastwall.errors import UnknownKind
from blastwall.taxonomy.schemas import EntryOut
from blastwall.taxonomy.tables import FRAMEWORKS, taxonomy

app = typer.Typer(help="MITRE ATLAS, OWASP LLM and agentic Top 10s, NIST AI 600-1, archetypes.")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("show")
def show(
    entry_id: Annotated[str, typer.Argument(help="An id: AML.T0051, LLM01:2025, ASI01, ...")],
    json: JsonOpt = False,
) -> None:
    """Explain a taxonomy id: what it is and what it maps to in the other frameworks."""
    tables = taxonomy()
    entry = EntryOut.of(tables.get(entry_id), tables)
    if json:
        print_json(entry.model_dump())
        return
    out.print(f"[bold]{escape(entry.id)}[/bold]  {escape(entry.name)}", markup=True)
    out.print(f"{entry.framework_name} · {entry.kind}")
    if entry.parent:
        out.print(f"sub-technique of {entry.parent.id} ({entry.parent.name})")
    if entry.description:
        out.print(entry.description, highlight=False)
    labels = {"tactic": "tactics", "mitigation": "techniques", "case-study": "techniques"}
    if entry.related:
        label = labels.get(entry.kind, "tactics" if entry.framework == "atlas" else "maps to")
        out.print(f"{label}: " + ", ".join(f"{r.id} ({r.name})" for r in entry.related))
    if entry.archetypes:
        out.print("archetypes: " + ", ".join(a.id for a in entry.archetypes))
    if entry.mapped and entry.framework != "archetype":
        out.print("related: " + ", ".join(f"{m.id} ({m.name})" for m in entry.mapped))
    if entry.attack:
        out.print(f"ATT&CK: {entry.attack}")
    if entry.url:
        out.print(entry.url, highlight=False)


@app.command("list")
def list_entries(
    framework: Annotated[
        str | None, typer.Option(help="One of: " + ", ".join(FRAMEWORKS) + ".")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. technique, tactic, mitigation.")] = None,
    json: JsonOpt = False,
) -> None:
    """List the entries of the taxonomy tables."""
    if framework is not None and framework not in FRAMEWORKS:
        raise typer.BadParameter(f"choose one of {', '.join(FRAMEWORKS)}", param_hint="--framework")
    tables = taxonomy()
    try:
        entries = tables.of(framework, kind)
    except UnknownKind as exc:
        raise typer.BadParameter(exc.hint, param_hint="--kind") from None
    if json:
        print_json(
            [
                {"id": e.id, "framework": e.framework, "kind": e.kind, "name": e.name}
                for e in entries
            ]
        )
        return
    print_table(
        ["id", "framework", "kind", "name"],
        [(e.id, e.framework, e.kind, e.name) for e in entries],
        title=f"{len(entries)} entries"
        + (f" (MITRE ATLAS {tables.atlas_version})" if framework in (None, "atlas") else ""),
    )
