"""An incident's timeline as people write and read it: facts, hypotheses and the verdicts
on them. The entries Blastwall writes for every change are `service.write_entry`'s."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Permission, Principal
from blastwall.errors import Conflict, NotFound
from blastwall.incidents.models import TimelineEntry
from blastwall.incidents.schemas import EntryCreate, EntryKind, VerdictIn
from blastwall.incidents.service import get_incident, write_entry
from blastwall.pagination import decode_cursor, encode_cursor, fetch_page
from blastwall.pipeline import IncidentFactsChanged

__all__ = ["add_entry", "judge_hypothesis", "judged_hypotheses", "list_recent", "list_timeline"]


def add_entry(
    session: Session, *, incident_id: int, entry: EntryCreate, actor: Principal
) -> TimelineEntry:
    actor.require(Permission.write_timeline)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    row = write_entry(session, incident, kind=entry.kind.value, actor=actor, text=entry.text)
    session.flush()
    if entry.kind is EntryKind.fact:
        pipeline.publish(
            session, IncidentFactsChanged(incident_id=incident.id, actor=actor, why="fact added")
        )
    return row


def judge_hypothesis(
    session: Session, *, incident_id: int, entry_id: int, verdict: VerdictIn, actor: Principal
) -> TimelineEntry:
    """Mark a hypothesis confirmed or refuted by appending a verdict entry that refers to it."""
    actor.require(Permission.write_timeline)
    incident = get_incident(session, incident_id=incident_id, principal=actor)
    target = session.get(TimelineEntry, entry_id)
    if target is None or target.incident_id != incident.id:
        raise NotFound(f"Incident {incident.id} has no timeline entry {entry_id}.")
    if target.kind != EntryKind.hypothesis.value:
        raise Conflict(
            f"Entry {entry_id} is a {target.kind}, not a hypothesis; only hypotheses "
            "are confirmed or refuted."
        )
    row = write_entry(
        session,
        incident,
        kind=f"hypothesis_{verdict.verdict.value}",
        actor=actor,
        text=verdict.text or f"Hypothesis {verdict.verdict.value}: {target.text}",
        data={"verdict": verdict.verdict.value},
        ref_id=target.id,
    )
    session.flush()
    return row


def list_timeline(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    kind: str | None = None,
) -> tuple[list[TimelineEntry], dict[int, str], str | None]:
    """Entries oldest first, with the current state of each hypothesis among them."""
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(TimelineEntry.id > after[0])
    if kind:
        query = query.where(TimelineEntry.kind == kind)
    rows, next_cursor = fetch_page(session, query.order_by(TimelineEntry.id), limit=limit)
    return rows, _states(session, incident.id, rows), next_cursor


def list_recent(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    limit: int,
    before: str | None = None,
) -> tuple[list[TimelineEntry], dict[int, str], str | None]:
    """The newest `limit` entries (of those before the cursor `before`), oldest first, with
    the state of each hypothesis among them, and the cursor of the entries before them (None
    when these are the first). A busy incident's page shows its latest history at once and
    reaches back a page at a time, without reading the whole timeline."""
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    query = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    until = decode_cursor(before, types=(int,))
    if until:
        query = query.where(TimelineEntry.id < until[0])
    newest = list(session.scalars(query.order_by(TimelineEntry.id.desc()).limit(limit + 1)))
    rows = newest[:limit][::-1]
    earlier = encode_cursor([rows[0].id]) if len(newest) > limit else None
    return rows, _states(session, incident.id, rows), earlier


def judged_hypotheses(
    session: Session, *, incident_id: int, principal: Principal, entries: list[TimelineEntry]
) -> tuple[list[TimelineEntry], dict[int, str]]:
    """The hypotheses that the verdicts among `entries` judge, with their state now: what a
    page already showing those hypotheses updates when the verdicts arrive."""
    incident = get_incident(session, incident_id=incident_id, principal=principal)
    ids = {e.ref_id for e in entries if e.ref_id is not None and e.kind.startswith("hypothesis_")}
    if not ids:
        return [], {}
    query = select(TimelineEntry).where(
        TimelineEntry.incident_id == incident.id,
        TimelineEntry.id.in_(ids),
        TimelineEntry.kind == EntryKind.hypothesis.value,
    )
    rows = list(session.scalars(query.order_by(TimelineEntry.id)))
    return rows, _states(session, incident.id, rows)


def _states(session: Session, incident_id: int, rows: list[TimelineEntry]) -> dict[int, str]:
    """The current state of each hypothesis among `rows`: open until its latest verdict (a
    verdict is on its hypothesis's timeline, whose index the query uses)."""
    states = {r.id: "open" for r in rows if r.kind == EntryKind.hypothesis.value}
    if states:
        verdicts = session.execute(
            select(TimelineEntry.ref_id, TimelineEntry.kind)
            .where(TimelineEntry.incident_id == incident_id, TimelineEntry.ref_id.in_(states))
            .order_by(TimelineEntry.id)
        )
        for ref_id, verdict_kind in verdicts:
            if ref_id is not None:
                states[ref_id] = verdict_kind.removeprefix("hypothesis_")
    return states
