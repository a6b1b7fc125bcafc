"""`blastwall obligations N`: an incident's obligations and their clocks; facts, anchors,
decisions, submissions, drafts and the reminder tick."""

from __future__ import annotations

import json as jsonlib
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.evidence.store import Vault
from blastwall.obligations import drafts, flows
from blastwall.obligations.rules import Anchor, SubmissionKind
from blastwall.obligations.schemas import (
    AnchorIn,
    Decision,
    DecisionIn,
    FactIn,
    FactsIn,
    FactState,
    ObligationOut,
)
from blastwall.settings import get_settings


class _IncidentFirst(TyperGroup):
    """`blastwall obligations 12` is `blastwall obligations list 12`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0].isdigit():
            args = ["list", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_IncidentFirst,
    help="Regulatory and contractual obligations of an incident: `blastwall obligations N`.",
    no_args_is_help=True,
)

Incident = Annotated[int, typer.Argument(min=1, help="The incident's number.")]
ObligationArg = Annotated[int, typer.Argument(min=1, help="The obligation's number.")]


def _when(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidInput(
            f"'{text}' is not a time with a zone.",
            [Problem(field, "give an ISO 8601 time with its offset, e.g. 2026-12-02T16:00+01:00")],
        )
    return value


def _show(rows: list[ObligationOut]) -> None:
    table = []
    for row in rows:
        first = next((c for c in row.clocks if c.due is not None and c.submitted_at is None), None)
        due = first.due.local if first and first.due else "-"
        table.append(
            [row.id, row.status.value, row.regime, row.article, due, "" if row.matches else "no"]
        )
    print_table(["id", "status", "regime", "article", "next deadline", "matches"], table)


@app.command("list")
def list_(
    incident: Incident, json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """The incident's obligations, with the next deadline of each."""
    with session_scope() as session:
        rows = flows.describe(session, incident_id=incident, principal=operator())
    if json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        out.print(f"Incident {incident} has no obligation candidates.")
        return
    _show(rows)


def _value(text: str) -> Any:
    try:
        return jsonlib.loads(text)
    except ValueError:
        return text


@app.command("facts")
def facts(
    incident: Incident,
    fact: Annotated[
        list[str], typer.Option("--fact", help="name=value (JSON or text); repeat for more.")
    ],
    suspected: Annotated[bool, typer.Option(help="Suspected, not confirmed.")] = False,
    note: Annotated[str, typer.Option(help="Why, for the timeline.")] = "",
) -> None:
    """Record facts the rules are judged on; the incident's obligations are judged again."""
    state = FactState.suspected if suspected else FactState.confirmed
    items = []
    for index, item in enumerate(fact):
        name, sep, raw = item.partition("=")
        if not sep:
            raise InvalidInput("A fact is name=value.", [Problem(f"--fact[{index}]", item)])
        items.append(FactIn(name=name.strip(), value=_value(raw), state=state))
    with session_scope() as session:
        count = flows.set_facts(
            session, incident_id=incident, body=FactsIn(facts=items, note=note), actor=operator()
        )
        audit(session, command="obligations facts", object=f"incident:{incident}")
        rows = flows.describe(session, incident_id=incident, principal=operator())
    out.print(f"{count} fact(s) changed.")
    _show(rows)


@app.command("anchor")
def anchor(
    incident: Incident,
    kind: Annotated[Anchor, typer.Argument(help="Which moment.")],
    at: Annotated[str, typer.Argument(help="When, ISO 8601 with its offset.")],
    reason: Annotated[str, typer.Option(help="Why this time.")],
) -> None:
    """Set a clock anchor; the clocks move, and the change is on the timeline."""
    with session_scope() as session:
        row = flows.set_anchor(
            session,
            incident_id=incident,
            kind=kind,
            body=AnchorIn(at=_when(at, "AT"), reason=reason),
            actor=operator(),
        )
        audit(session, command="obligations anchor", object=f"incident:{incident}")
    out.print(f"{kind.value}: {row.at.isoformat()}")


@app.command("decide")
def decide(
    incident: Incident,
    obligation: ObligationArg,
    decision: Annotated[Decision, typer.Argument()],
    reason: Annotated[str, typer.Option(help="Why (required).")],
) -> None:
    """Confirm an obligation or dismiss it as not applicable (legal, admin)."""
    with session_scope() as session:
        row = flows.decide(
            session,
            incident_id=incident,
            obligation_id=obligation,
            body=DecisionIn(decision=decision, reason=reason),
            actor=operator(),
        )
        audit(session, command="obligations decide", object=f"obligation:{obligation}")
    out.print(f"obligation {row.id}: {row.status.value}")


@app.command("submit")
def submit(
    incident: Incident,
    obligation: ObligationArg,
    kind: Annotated[SubmissionKind, typer.Option(help="initial, intermediate, final, amended.")],
    at: Annotated[str, typer.Option(help="When it was filed, ISO 8601 with its offset.")],
    reference: Annotated[str, typer.Option(help="The authority's reference number.")] = "",
    file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="The filed document.")
    ] = None,
    note: Annotated[str, typer.Option()] = "",
) -> None:
    """Record a report filed for a confirmed obligation; the document is kept as evidence."""
    document = None
    if file is not None:
        media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        document = (file.read_bytes(), file.name, media)
    with session_scope() as session:
        row = flows.record_submission(
            session,
            incident_id=incident,
            obligation_id=obligation,
            kind=kind,
            submitted_at=_when(at, "--at"),
            reference=reference,
            note=note,
            document=document,
            actor=operator(),
            vault=Vault.of(get_settings()),
        )
        audit(session, command="obligations submit", object=f"obligation:{obligation}")
    out.print(f"obligation {row.id}: {len(row.submissions)} submission(s)")


@app.command("draft")
def draft(
    incident: Incident,
    obligation: ObligationArg,
    output: Annotated[
        Path | None, typer.Option(help="Write it to this file: a PDF where it ends in .pdf.")
    ] = None,
) -> None:
    """The report's draft in Markdown (or PDF), from confirmed facts, its gaps first."""
    with session_scope() as session:
        found = drafts.render(
            session, incident_id=incident, obligation_id=obligation, principal=operator()
        )
    if output is None:
        print(found.markdown, end="")
        return
    if output.suffix.lower() == ".pdf":
        output.write_bytes(drafts.to_pdf(found.markdown))
    else:
        output.write_text(found.markdown, encoding="utf-8")
    out.print(f"draft written to {output}; {len(found.gaps)} gap(s)")


@app.command("tick")
def tick() -> None:
    """Fire the reminders due now (50, 75, 90 % of a clock, and overdue), once each."""
    with session_scope() as session:
        count = flows.tick(session, utcnow())
    out.print(f"{count} reminder(s) published")
