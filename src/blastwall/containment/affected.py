"""The retro-hunt behind `blastwall affected`: the conversations, users and tool-call side
effects the incident touched on its systems in its time range (the conversations its
signals name, or those matching a pattern, or all; optionally only the calls of one tool),
for the business owners to follow up, and marking their outputs quarantined."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service
from blastwall.correlation.models import Candidate
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.evidence.service import kept_interactions
from blastwall.incidents import service as incidents
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction
from blastwall.telemetry.service import InteractionFilter, list_interactions

#: How far before detection the hunt looks by default: harm starts before it is noticed.
LOOKBACK = timedelta(hours=24)
PAGE = 500


class AffectedRow(BaseModel):
    interaction_id: int
    system_id: str | None
    at: datetime
    operation: str
    conversation_id: str | None
    user_id: str | None
    agent: str | None
    tool: str | None
    tool_arguments: Any
    tool_result: Any
    side_effect: bool
    quarantined: bool


class Affected(BaseModel):
    incident_id: int
    systems: list[str]
    since: datetime
    until: datetime
    tool: str | None
    pattern: str | None
    scope: str = Field(
        description="Which conversations count: pattern (those matching it), signals (those "
        "the incident's signals and evidence name) or all (all the systems' traffic)."
    )
    conversations: list[dict[str, Any]]
    users: list[dict[str, Any]]
    side_effects: list[AffectedRow]
    interactions: list[AffectedRow]
    truncated: bool


@dataclass
class _Hunt:
    rows: list[AffectedRow] = field(default_factory=list)
    truncated: bool = False


def _haystack(row: Any) -> str:
    parts = [row.input_messages, row.output_messages, row.tool_arguments, row.tool_result]
    return "\n".join(orjson.dumps(p).decode() for p in parts if p is not None)


def find_affected(
    session: Session,
    *,
    incident_id: int,
    principal: Principal,
    since: datetime | None = None,
    until: datetime | None = None,
    tool: str | None = None,
    pattern: str | None = None,
    everything: bool = False,
    limit: int = 10_000,
) -> Affected:
    """What the incident touched on its systems from `since` (default: a day before
    detection) to `until` (default: now), at most `limit` interactions, newest first.

    Which conversations count (`scope`): with a `pattern`, those with an interaction whose
    content matches it; without one, those the incident's signals name and those of the
    interactions kept as its evidence; with `everything`, or when there are none, all of the
    systems' traffic. A conversation counts whole, so the refunds of a conversation whose
    first message was the injection are in."""
    principal.require(Permission.see_content)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    systems = incidents.systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
    since = since or incident.detected_at - LOOKBACK
    until = until or utcnow()
    try:
        matcher = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise InvalidInput(
            "The pattern is not a regular expression.", [Problem("pattern", str(exc))]
        ) from None
    touched: _Touched | None = None
    scope = "all"
    if matcher is not None:
        touched, scope = _Touched(), "pattern"
        for row in _rows(session, systems, None, since, until):
            if matcher.search(_haystack(row)):
                touched.add(row.id, row.conversation_id)
    elif not everything:
        touched = _signalled(session, incident.id)
        scope = "signals" if touched.ids or touched.conversations else "all"
        if scope == "all":
            touched = None
    hunt = _Hunt()
    for row in _rows(session, systems, tool, since, until):
        if touched is not None and not touched.covers(row.id, row.conversation_id):
            continue
        if len(hunt.rows) >= limit:
            hunt.truncated = True
            break
        hunt.rows.append(
            AffectedRow(
                interaction_id=row.id,
                system_id=row.system_id,
                at=row.start_time,
                operation=row.operation,
                conversation_id=row.conversation_id,
                user_id=row.user_id,
                agent=row.agent_name,
                tool=row.tool_name,
                tool_arguments=row.tool_arguments,
                tool_result=row.tool_result,
                side_effect=row.tool_name is not None,
                quarantined=False,
            )
        )
    held = service.quarantined(session, interaction_ids=[r.interaction_id for r in hunt.rows])
    for found in hunt.rows:
        found.quarantined = found.interaction_id in held
    return _summarise(incident.id, systems, since, until, tool, pattern, scope, hunt)


@dataclass
class _Touched:
    """The interactions and conversations an incident touched."""

    ids: set[int] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)

    def add(self, interaction_id: int, conversation_id: str | None) -> None:
        self.ids.add(interaction_id)
        if conversation_id:
            self.conversations.add(conversation_id)

    def covers(self, interaction_id: int, conversation_id: str | None) -> bool:
        return interaction_id in self.ids or (
            conversation_id is not None and conversation_id in self.conversations
        )


def _rows(
    session: Session, systems: list[str], tool: str | None, since: datetime, until: datetime
) -> Iterator[Any]:
    """The systems' interactions in the time range, newest first, a page at a time."""
    for system_id in systems:
        where = InteractionFilter(system_id=system_id, tool=tool, since=since, until=until)
        cursor: str | None = None
        while True:
            page, cursor = list_interactions(session, where=where, limit=PAGE, cursor=cursor)
            yield from page
            if cursor is None:
                break


def _signalled(session: Session, incident_id: int) -> _Touched:
    """The interactions and conversations the incident's signals name, and the interactions
    kept as its evidence (collected for its signals, by hand, or from an attached hunt)."""
    touched = _Touched()
    candidates = select(Candidate.id).where(Candidate.incident_id == incident_id)
    rows = session.execute(
        select(Signal.conversation_id, Signal.interaction_ids).where(
            Signal.candidate_id.in_(candidates)
        )
    ).all()
    ids: set[int] = set()
    for conversation_id, interaction_ids in rows:
        if conversation_id:
            touched.conversations.add(conversation_id)
        ids.update(i for i in interaction_ids or () if isinstance(i, int))
    ids |= kept_interactions(session, incident_id=incident_id)
    ordered = sorted(ids)
    for at in range(0, len(ordered), 500):
        chunk = ordered[at : at + 500]
        found = session.execute(
            select(Interaction.id, Interaction.conversation_id).where(Interaction.id.in_(chunk))
        )
        for interaction_id, conversation_id in found:
            touched.add(interaction_id, conversation_id)
    return touched


def _summarise(
    incident_id: int,
    systems: list[str],
    since: datetime,
    until: datetime,
    tool: str | None,
    pattern: str | None,
    scope: str,
    hunt: _Hunt,
) -> Affected:
    conversations: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    for row in sorted(hunt.rows, key=lambda r: (r.at, r.interaction_id)):
        if row.conversation_id:
            entry = conversations.setdefault(
                row.conversation_id,
                {
                    "conversation_id": row.conversation_id,
                    "user_id": row.user_id,
                    "first": row.at,
                    "last": row.at,
                    "interactions": 0,
                    "side_effects": 0,
                },
            )
            entry["last"] = row.at
            entry["interactions"] += 1
            entry["side_effects"] += int(row.side_effect)
        if row.user_id:
            user = users.setdefault(
                row.user_id, {"user_id": row.user_id, "conversations": set(), "interactions": 0}
            )
            user["interactions"] += 1
            if row.conversation_id:
                user["conversations"].add(row.conversation_id)
    return Affected(
        incident_id=incident_id,
        systems=systems,
        since=since,
        until=until,
        tool=tool,
        pattern=pattern,
        scope=scope,
        conversations=list(conversations.values()),
        users=[{**u, "conversations": len(u["conversations"])} for u in users.values()],
        side_effects=[r for r in hunt.rows if r.side_effect],
        interactions=hunt.rows,
        truncated=hunt.truncated,
    )


CSV_COLUMNS = (
    "interaction_id",
    "system_id",
    "at",
    "operation",
    "conversation_id",
    "user_id",
    "agent",
    "tool",
    "tool_arguments",
    "tool_result",
    "side_effect",
    "quarantined",
)


def to_csv(affected: Affected) -> str:
    """One line per interaction, tool arguments and results as JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in affected.interactions:
        data = row.model_dump(mode="json")
        writer.writerow(
            orjson.dumps(data[c]).decode()
            if c in ("tool_arguments", "tool_result") and data[c] is not None
            else ("" if data[c] is None else data[c])
            for c in CSV_COLUMNS
        )
    return buffer.getvalue()


def quarantine_affected(
    session: Session, *, affected: Affected, principal: Principal, reason: str
) -> list[int]:
    """Mark the outputs of every affected interaction quarantined under the incident, with a
    timeline entry; answers the interactions newly marked."""
    principal.require(Permission.write_incidents)
    incident = incidents.get_incident(
        session, incident_id=affected.incident_id, principal=principal
    )
    marked = service.quarantine_outputs(
        session,
        incident_id=incident.id,
        interaction_ids=[r.interaction_id for r in affected.interactions],
        by=principal.name,
        reason=reason,
    )
    incidents.record_entry(
        session,
        incident=incident,
        kind="outputs_quarantined",
        actor=principal,
        text=f"Outputs of {len(marked)} interaction(s) marked quarantined: {reason}",
        data={
            "interaction_ids": marked,
            "since": affected.since.isoformat(),
            "until": affected.until.isoformat(),
            "tool": affected.tool,
            "pattern": affected.pattern,
            "scope": affected.scope,
        },
    )
    session.commit()
    return marked
