"""`blastwall inventory ...` and `blastwall changes ...`."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml

from blastwall.console import audit, fmt, operator, out, print_json, print_table, session_scope
from blastwall.inventory import service
from blastwall.inventory.loader import load_path
from blastwall.inventory.schemas import ChangeIn, ChangeKind, ChangeOut, SystemSpec
from blastwall.obligations import service as obligations
from blastwall.obligations.profile import find_profile, load_profile
from blastwall.telemetry.capture import state_of as content_capture
from blastwall.telemetry.schemas import ContentCaptureOut

app = typer.Typer(help="The inventory of AI systems (AI bill of materials).", no_args_is_help=True)
changes_app = typer.Typer(
    help="The change log: deploys, prompt and model changes, flag flips.", no_args_is_help=True
)


@app.command("apply")
def apply(
    path: Annotated[Path, typer.Argument(help="A YAML file, or a folder of them.")],
    dry_run: Annotated[bool, typer.Option(help="Check and show what would change.")] = False,
) -> None:
    """Create or update systems from YAML; every difference goes to the change log.

    A file with any problem is refused whole, with each problem's file, line and field.
    """
    with session_scope() as session:
        from sqlalchemy import select

        from blastwall.inventory.models import System

        known = set(session.scalars(select(System.id)))
        profile_path = find_profile(path)
        profile = load_profile(profile_path) if profile_path else None
        loaded = load_path(path, known_ids=known)
        if dry_run:
            if profile_path is not None:
                out.print(f"organisation profile {profile_path}: valid")
            for item in loaded:
                row = session.get(System, item.spec.id)
                before = row.spec if row else None
                diff = service.diff_specs(
                    before, item.spec.model_dump(mode="json", exclude_none=True)
                )
                state = (
                    "new" if row is None else (f"{len(diff)} change(s)" if diff else "unchanged")
                )
                out.print(f"{item.spec.id}: {state}")
            return
        result = service.apply_specs(
            session, specs=[i.spec for i in loaded], actor=operator().name, source=str(path)
        )
        audit(
            session,
            command="inventory apply",
            object=",".join(f"system:{s}" for s in result.created + result.updated)[:300] or None,
        )
        if profile is not None and profile_path is not None:
            applied = obligations.apply_profile(
                session, spec=profile, source=str(profile_path), actor=operator().name
            )
            out.print(
                f"organisation profile {profile_path}: "
                + ("applied" if applied is not None else "unchanged")
            )
    out.print(
        f"applied {len(loaded)} system(s): {len(result.created)} created, "
        f"{len(result.updated)} updated, {len(result.unchanged)} unchanged; "
        f"{result.changes} change(s) logged"
    )


@app.command("list")
def list_(json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the AI systems."""
    rows = []
    with session_scope() as session:
        cursor = None
        while True:
            page, cursor = service.list_systems(session, limit=500, cursor=cursor)
            rows.extend(page)
            if cursor is None:
                break
    if json:
        print_json(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "type": r.type,
                    "owner_team": r.owner_team,
                    "risk_tier": r.risk_tier,
                    "eu_ai_act_high_risk": r.eu_ai_act_high_risk,
                }
                for r in rows
            ]
        )
        return
    print_table(
        ["id", "name", "type", "owner", "risk", "EU high-risk"],
        [
            (
                r.id,
                r.name,
                r.type,
                r.owner_team,
                r.risk_tier,
                "yes" if r.eu_ai_act_high_risk else "no",
            )
            for r in rows
        ],
    )


@app.command("show")
def show(
    system_id: Annotated[str, typer.Argument(help="The system's id.")],
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")] = False,
) -> None:
    """Show one system's declaration as applied, and whether its GenAI model calls arrive
    with their content (as YAML comments; on stderr with --json)."""
    with session_scope() as session:
        row = service.get_system(session, system_id=system_id)
        spec = row.spec
        capture = content_capture(session, system_id=row.id)
    lines = _capture_lines(capture)
    if json:
        print_json(spec)  # the declaration alone, as it can be applied again
        typer.echo("\n".join(lines), err=True)
    else:
        typer.echo(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), nl=False)
        typer.echo("\n".join(f"# {line}" for line in lines))


def _capture_lines(capture: ContentCaptureOut) -> list[str]:
    if capture.state == "unknown":
        return ["content capture: unknown (no GenAI model call received yet)"]
    state = f"content capture: {capture.state} since {fmt(capture.since)}"
    if capture.hint is None:
        return [state]
    text = (
        f"{state}: its GenAI model calls arrive without prompts or outputs, and the detectors "
        f"cannot see what goes in or out. {capture.hint}"
    )
    return textwrap.wrap(text, width=98, break_on_hyphens=False, break_long_words=False)


@app.command("export")
def export(
    system_id: Annotated[str, typer.Argument(help="The system's id.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File; default stdout.")
    ] = None,
) -> None:
    """Export a system as a CycloneDX 1.6 ML-BOM (JSON)."""
    from blastwall.inventory.cyclonedx import to_cyclonedx

    with session_scope() as session:
        spec = service.get_system(session, system_id=system_id).parsed
    document = to_cyclonedx(spec)
    if output is None:
        typer.echo(document)
    else:
        output.write_text(document, encoding="utf-8")
        out.print(f"wrote {output}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="A CycloneDX JSON BOM of one AI system.")],
) -> None:
    """Create or update a system from a CycloneDX ML-BOM; differences go to the change log."""
    from blastwall.inventory.cyclonedx import from_cyclonedx

    spec = from_cyclonedx(path.read_text(encoding="utf-8"))
    with session_scope() as session:
        spec = service.keep_prompt_texts(session, spec)
        result = service.apply_specs(
            session, specs=[spec], actor=operator().name, source=f"cyclonedx:{path}"
        )
        audit(session, command="inventory import", object=f"system:{spec.id}")
    state = "created" if result.created else ("updated" if result.updated else "unchanged")
    out.print(f"{spec.id}: {state}; {result.changes} change(s) logged")


@changes_app.command("record")
def record(
    system: Annotated[str, typer.Option(help="The system's id.")],
    kind: Annotated[ChangeKind, typer.Option(help="What kind of change.")],
    summary: Annotated[str, typer.Option(help="One line: what changed.")],
    ref: Annotated[str | None, typer.Option(help="A link: commit, deploy, PR.")] = None,
    at: Annotated[datetime | None, typer.Option(help="When (ISO 8601, UTC); default now.")] = None,
    version: Annotated[
        str | None,
        typer.Option(help="prompt_change/model_change: the version that became current."),
    ] = None,
    component: Annotated[
        str | None, typer.Option(help="The prompt or model id; default: the only one.")
    ] = None,
    content_hash: Annotated[
        str | None, typer.Option(help="prompt_change: sha256:<hex> of the new version.")
    ] = None,
) -> None:
    """Record a change against a system (with --version, a prompt or model version that
    containment can later pin or roll back to)."""
    from datetime import UTC

    when = at.replace(tzinfo=UTC) if at and at.tzinfo is None else at
    change = ChangeIn(
        system_id=system,
        kind=kind,
        summary=summary,
        ref=ref,
        at=when,
        source="cli",
        version=version,
        component=component,
        content_hash=content_hash,
    )
    with session_scope() as session:
        row = service.record_change(session, change=change, actor=operator().name)
        audit(session, command="changes record", object=f"change:{row.id}")
    out.print(f"change {row.id} recorded on {system}")


@changes_app.command("list")
def list_changes(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    since: Annotated[datetime | None, typer.Option(help="At or after (ISO 8601, UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Before (ISO 8601, UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The change log, newest first."""
    from datetime import UTC

    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until and until.tzinfo is None else until
    with session_scope() as session:
        rows, _ = service.list_changes(
            session, limit=limit, system_id=system, since=since, until=until
        )
        items = [ChangeOut.model_validate(r, from_attributes=True) for r in rows]
    if json:
        print_json(items)
        return
    print_table(
        ["at", "system", "kind", "summary", "before", "after", "by"],
        [(c.at, c.system_id, c.kind, c.summary, c.before, c.after, c.actor) for c in items],
    )


__all__ = ["SystemSpec", "app", "changes_app"]
