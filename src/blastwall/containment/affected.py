"""The retro-hunt behind `blastwall affected`: the conversations, users and tool-call side
effects of an incident's systems in its time range (optionally only the interactions that
match a pattern or call one tool), for the business owners to follow up, and marking their
outputs quarantined."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.incidents import service as incidents
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
    limit: int = 10_000,
) -> Affected:
    """What the incident's systems touched from `since` (default: a day before detection)
    to `until` (default: now); at most `limit` interactions, newest first."""
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
    hunt = _Hunt()
    for system_id in systems:
        where = InteractionFilter(system_id=system_id, tool=tool, since=since, until=until)
        cursor: str | None = None
        while not hunt.truncated:
            page, cursor = list_interactions(session, where=where, limit=PAGE, cursor=cursor)
            for row in page:
                if matcher and not matcher.search(_haystack(row)):
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
            if cursor is None:
                break
    held = service.quarantined(session, interaction_ids=[r.interaction_id for r in hunt.rows])
    for found in hunt.rows:
        found.quarantined = found.interaction_id in held
    return _summarise(incident.id, systems, since, until, tool, pattern, hunt)


def _summarise(
    incident_id: int,
    systems: list[str],
    since: datetime,
    until: datetime,
    tool: str | None,
    pattern: str | None,
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
        },
    )
    session.commit()
    return marked
