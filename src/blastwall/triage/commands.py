"""`blastwall triage INCIDENT`: the triage pack on the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from blastwall.console import operator, out, print_json, print_table, session_scope
from blastwall.playbooks.library import library
from blastwall.settings import get_settings
from blastwall.triage.graph import to_svg
from blastwall.triage.schemas import TriagePack
from blastwall.triage.service import triage_pack


def triage(
    incident_id: Annotated[int, typer.Argument(help="The incident's number.", min=1)],
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    svg: Annotated[
        Path | None, typer.Option(help="Also write the blast radius graph to this SVG file.")
    ] = None,
) -> None:
    """The triage pack: changes, anomalies, blast radius, similar incidents, playbook steps,
    owners and classification."""
    with session_scope() as session:
        pack = triage_pack(
            session,
            incident_id=incident_id,
            principal=operator(),
            library=library(get_settings().playbook_dir),
        )
    if svg is not None:
        svg.write_text(to_svg(pack.blast_radius), "utf-8")
    if json:
        print_json(pack.model_dump(mode="json"))
        return
    _print_pack(pack)


def _print_pack(pack: TriagePack) -> None:
    """The pack on the terminal: what happened, what it resembles, what to do."""
    _print_events(pack)
    _print_similar(pack)
    _print_response(pack)


def _print_events(pack: TriagePack) -> None:
    """The incident's head, the changes before it, the top anomalies and the blast radius."""
    out.print(
        f"[bold]#{pack.incident_id} {escape(pack.title)}[/bold]  {pack.severity} "
        f"{pack.archetype} · {pack.status} · {pack.signals} signals · "
        f"first signal {pack.first_signal_at or '-'}",
        markup=True,
    )
    if pack.changes:
        print_table(
            ["when", "system", "kind", "change"],
            [(c.at, c.system_id, c.kind, c.summary) for c in pack.changes[:15]],
            title="Changes in the 72 hours before",
        )
    else:
        out.print("No recorded change in the 72 hours before the first signal.")
    if pack.anomalies:
        print_table(
            ["kind", "detector/source", "count", "severity", "first", "last", "example"],
            [
                (
                    a.kind,
                    a.detector or a.source,
                    a.count,
                    a.severity,
                    a.first_seen,
                    a.last_seen,
                    a.example,
                )
                for a in pack.anomalies
            ],
            title="Top anomalies",
        )
    radius = pack.blast_radius
    out.print(
        f"Blast radius: {', '.join(radius.systems) or '-'}; also exposed through shared "
        f"components: {', '.join(radius.exposed) or 'none'}"
    )


def _print_similar(pack: TriagePack) -> None:
    """Similar past incidents, here and in the public library."""
    if pack.similar:
        print_table(
            ["#", "title", "archetype", "status", "score", "what was done"],
            [
                (
                    s.id,
                    s.title,
                    s.archetype,
                    s.status,
                    s.score,
                    "; ".join(s.mitigations[:2]),
                )
                for s in pack.similar
            ],
            title="Similar past incidents",
        )
    if pack.similar_external:
        print_table(
            ["source", "id", "year", "title", "score", "url"],
            [
                (e.source, e.external_id, e.year or "", e.title, e.score, e.url or "")
                for e in pack.similar_external
            ],
            title="Similar incidents elsewhere (public library)",
        )
        for attribution in dict.fromkeys(e.attribution for e in pack.similar_external):
            out.print(attribution)


def _print_response(pack: TriagePack) -> None:
    """The playbook's steps, the suggested roles and the classification."""
    if pack.playbook:
        print_table(
            ["step", "kind", "title", "control"],
            [
                (
                    s.id,
                    s.kind,
                    s.title,
                    (s.control or "") + ("" if s.supported in (None, True) else " (not declared)"),
                )
                for s in pack.playbook.steps
            ],
            title=f"Playbook: {pack.playbook.name}",
        )
    for role in pack.roles:
        out.print(f"Suggested {role.role}: {role.who} ({role.why})")
    if pack.classification:
        out.print(
            "Classification: " + ", ".join(f"{c.id} ({c.name})" for c in pack.classification[:8])
        )
