"""`blastwall status`: the public status page's components, maintenance windows, subscribers,
and its export as static files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer

from blastwall.comms.flows import statuspage as flows
from blastwall.comms.service import statuspage as pages
from blastwall.comms.service import statuspage_subscribers as subscribers
from blastwall.comms.service.statuspage import PageInfo
from blastwall.comms.service.statuspage_feed import Feed, iso
from blastwall.console import audit, out, print_json, print_table, session_scope
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.settings import get_settings

__all__ = ["app"]

app = typer.Typer(help="The public status page: components, maintenance, subscribers, export.")
maintenance_app = typer.Typer(help="Maintenance windows shown on the status page.")
app.add_typer(maintenance_app, name="maintenance")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="The YAML file that declares the components.")],
) -> None:
    """Make the page's components those the file declares (those it no longer declares are
    removed)."""
    spec = pages.load_spec(file)
    with session_scope() as session:
        added, changed, removed = pages.apply_components(session, spec=spec, now=utcnow())
        audit(session, command="status apply", object="status-page")
    out.print(f"{added} added, {changed} changed, {removed} removed")


@app.command("show")
def show(json: JsonOpt = False) -> None:
    """The page's components with their status, and its unresolved incidents."""
    with session_scope() as session:
        summary = Feed.read(session, page=PageInfo.of(get_settings()), now=utcnow())
        docs = summary.documents()["summary.json"]
    if json:
        print_json(docs)
        return
    out.print(docs["status"]["description"])
    print_table(
        ["component", "name", "group", "status"],
        [
            (c["id"], c["name"], c["group_id"], c["status"])
            for c in docs["components"]
            if not c["group"]
        ],
    )
    for incident in docs["incidents"]:
        out.print(f"{incident['id']}  {incident['status']:<14} {incident['name']}")


@app.command("export")
def export(
    folder: Annotated[Path, typer.Argument(help="Where to write the page (made if missing).")],
) -> None:
    """Write the page as static files: index.html and the api/v2 JSON documents, to publish
    anywhere (it stays up while Blastwall is down)."""
    with session_scope() as session:
        page = PageInfo.of(get_settings())
        feed = Feed.read(session, page=page, now=utcnow())
        documents = feed.documents()
        html = feed.html(api_base="api/v2/", subscribe=f"{page.url}/subscribe")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(html, encoding="utf-8")
    for name, document in documents.items():
        path = folder / "api" / "v2" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    out.print(f"wrote index.html and {len(documents)} JSON documents to {folder.resolve()}")


def _moment(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{option} '{value}' is not a time.",
            [Problem(option, "give an ISO 8601 time, e.g. 2026-12-24T22:00 (UTC) or with +01:00")],
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@maintenance_app.command("add")
def maintenance_add(
    component: Annotated[
        list[str], typer.Option("--component", "-c", help="A component it concerns (repeat).")
    ],
    start: Annotated[str, typer.Option(help="When it starts (ISO 8601; UTC unless given).")],
    end: Annotated[str, typer.Option(help="When it ends (ISO 8601; UTC unless given).")],
    title: Annotated[str, typer.Option(help="What is done, as readers see it.")],
    body: Annotated[str, typer.Option(help="More about it, for readers.")] = "",
    json: JsonOpt = False,
) -> None:
    """Schedule a maintenance window: its components show under_maintenance while it is in
    force, and the subscribers of its components are told."""
    with session_scope() as session:
        row = flows.add_maintenance(
            session,
            component_ids=component,
            start=_moment(start, "--start"),
            end=_moment(end, "--end"),
            title=title,
            body=body,
            page=PageInfo.of(get_settings()),
        )
        audit(session, command="status maintenance add", object=f"status-maintenance:{row.id}")
        shown: dict[str, object] = {
            "id": row.id,
            "scheduled_for": iso(row.scheduled_for),
            "scheduled_until": iso(row.scheduled_until),
            "components": row.component_ids,
        }
    if json:
        print_json(shown)
        return
    out.print(
        f"maintenance {row.id} scheduled {shown['scheduled_for']} to {shown['scheduled_until']}"
    )


@maintenance_app.command("list")
def maintenance_list(json: JsonOpt = False) -> None:
    """The maintenances of the last 90 days and those to come."""
    now = utcnow()
    with session_scope() as session:
        rows = [
            {
                "id": row.id,
                "name": row.name,
                "status": pages.maintenance_phase(row, now).value,
                "scheduled_for": iso(row.scheduled_for),
                "scheduled_until": iso(row.scheduled_until),
                "components": row.component_ids,
            }
            for row in pages.maintenances(session, now=now)
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "status", "from", "until", "components", "title"],
        [
            (
                r["id"],
                r["status"],
                r["scheduled_for"],
                r["scheduled_until"],
                r["components"],
                r["name"],
            )
            for r in rows
        ],
    )


@app.command("subscribers")
def subscribers_list(
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100, json: JsonOpt = False
) -> None:
    """The page's subscribers, newest first, pending or confirmed."""
    with session_scope() as session:
        rows = [
            {
                "id": row.id,
                "kind": row.kind.value,
                "address": row.address,
                "components": row.component_ids,
                "created_at": iso(row.created_at),
                "confirmed_at": iso(row.confirmed_at),
            }
            for row in subscribers.list_subscribers(session, limit=limit)
        ]
    if json:
        print_json(rows)
        return
    print_table(
        ["id", "kind", "address", "components", "since", "confirmed"],
        [
            (r["id"], r["kind"], r["address"], r["components"], r["created_at"], r["confirmed_at"])
            for r in rows
        ],
    )
