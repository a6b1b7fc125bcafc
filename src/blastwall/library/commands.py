"""`blastwall library`: import the known-incident sources, search them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.library import service
from blastwall.library.schemas import KnownIncidentOut

app = typer.Typer(help="The known-incident library: genai-incidents and ATLAS case studies.")


@app.command("import")
def import_(
    source: Annotated[str, typer.Option(help="genai-incidents, atlas, or all.")] = "all",
) -> None:
    """Import (or refresh) the library from the sources shipped with the installation."""
    sources = service.installed_sources() if source == "all" else (source,)
    if source == "all" and "genai-incidents" not in sources:
        out.print(f"genai-incidents skipped. {service.GENAI_NOT_INSTALLED}", highlight=False)
    with session_scope() as session, Progress(transient=True) as progress:
        for name in sources:
            task = progress.add_task(f"importing {name}", total=None)

            def advance(done: int, task: TaskID = task) -> None:
                progress.update(task, completed=done)

            result = service.import_source(session, source=name, actor=operator(), progress=advance)
            progress.remove_task(task)
            audit(session, command="library import", object=f"library:{name}")
            unknown = sum(result.unknown_ids.values())
            out.print(
                f"{name} {result.version}: {result.added} added, {result.updated} updated"
                + (f"; {unknown} unknown taxonomy ids dropped" if unknown else "")
            )


@app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="Words to look for.")],
    limit: Annotated[int, typer.Option(min=1, max=50)] = 10,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Known incidents closest to the words."""
    with session_scope() as session:
        found = service.search(session, text=text, principal=operator(), limit=limit)
        rows = [(KnownIncidentOut.model_validate(r), s) for r, s in found]
    if json:
        print_json([r.model_dump(mode="json") | {"score": round(s, 3)} for r, s in rows])
        return
    if not rows:
        out.print("Nothing found. Has the library been imported? `blastwall library import`")
        return
    print_table(
        ["id", "source", "ref", "year", "title", "score"],
        [(r.id, r.source, r.external_id, r.year, r.title, round(s, 2)) for r, s in rows],
    )


@app.command("show")
def show(known_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """One known incident, with its source and attribution."""
    with session_scope() as session:
        row = KnownIncidentOut.model_validate(
            service.get(session, known_id=known_id, principal=operator())
        )
    where = f"{row.source} {row.external_id}, {row.occurred or '-'}"
    out.print(f"[bold]{escape(row.title)}[/bold]  ({escape(where)})", markup=True)
    out.print(row.description, highlight=False)
    if row.atlas:
        out.print("ATLAS: " + ", ".join(row.atlas))
    if row.url:
        out.print(row.url, highlight=False)
    out.print(f"Source: {row.attribution}", highlight=False)
