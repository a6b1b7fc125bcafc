"""The retro-hunt behind `blastwall affected`: the conversations, users, tool calls and side
effects the incident touched on its systems in its time range (the conversations its
signals name, or those matching a pattern, or all; optionally only the calls of one tool),
for the business owners to follow up, and marking their outputs quarantined.

Tool names are one identity (`blastwall_guard.names.tool_key`): `--tool issue-refund` (the
inventory's spelling) finds the spans of `issue_refund`. A side effect is a call that
succeeded (its span has no error type) of a tool the inventory marks as writing: one of its
permissions has an action (after the colon) that is not a reading verb, or it declares no
permissions at all (unknown counts as writing, and the report says so). Per tool, the
report heads with the count of side effects and the sums of their numeric arguments per
currency: how much.

The time range is read once: with a pattern, to find the matching conversations; then only
the touched conversations are read again, through their index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service
from blastwall.containment.affected_report import (
    CSV_COLUMNS,
    conversations,
    report_row,
    to_csv,
    tool_totals,
    totals_lines,
    users,
)
from blastwall.containment.schemas import Affected, AffectedRow
from blastwall.containment.tool_access import READING_VERBS, ToolInventory, permission_writes
from blastwall.containment.touched import (
    COLUMNS,
    Touched,
    in_range,
    matching,
    newest_first,
    signalled,
    tool_filter,
)
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.incidents import service as incidents
from blastwall_guard.names import tool_key

__all__ = [
    "CSV_COLUMNS",
    "LOOKBACK",
    "READING_VERBS",
    "Affected",
    "AffectedRow",
    "find_affected",
    "permission_writes",
    "quarantine_affected",
    "to_csv",
    "totals_lines",
]

#: How far before detection the hunt looks by default: harm starts before it is noticed.
LOOKBACK = timedelta(hours=24)


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
    first message was the injection are in. `tool` keeps the calls of one tool, in any
    spelling of its name."""
    principal.require(Permission.see_content)
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    systems = incidents.systems_of(session, incident_ids=[incident.id]).get(incident.id, [])
    since = since or incident.detected_at - LOOKBACK
    until = until or utcnow()
    touched, scope = _scope(session, incident.id, systems, since, until, pattern, everything)
    query = in_range(select(*COLUMNS), systems, since, until)
    if tool:
        query = query.where(tool_filter(tool))
    found: Iterable[Any] = (
        newest_first(session, query) if touched is None else touched.rows(session, query)
    )
    inventory = ToolInventory.load(session, systems)
    rows, truncated = _rows(found, inventory, tool_key(tool) if tool else None, limit)
    held = service.quarantined(session, interaction_ids=[r.interaction_id for r in rows])
    for row in rows:
        row.quarantined = row.interaction_id in held
    by_tool, notes = tool_totals(rows, inventory)
    if truncated:
        notes.append(f"The report stops at {limit} interactions; its totals count those.")
    return Affected(
        incident_id=incident.id,
        systems=systems,
        since=since,
        until=until,
        tool=tool,
        pattern=pattern,
        scope=scope,
        totals=by_tool,
        notes=notes,
        conversations=conversations(rows),
        users=users(rows),
        side_effects=[r for r in rows if r.side_effect],
        calls=[r for r in rows if r.tool is not None],
        interactions=rows,
        truncated=truncated,
    )


def _scope(
    session: Session,
    incident_id: int,
    systems: list[str],
    since: datetime,
    until: datetime,
    pattern: str | None,
    everything: bool,
) -> tuple[Touched | None, str]:
    """What the incident touched and the scope's name: the conversations matching the
    pattern, else those its signals and evidence name; None (all traffic) with
    `everything` or when there are none."""
    try:
        matcher = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise InvalidInput(
            "The pattern is not a regular expression.", [Problem("pattern", str(exc))]
        ) from None
    if matcher is not None:
        return matching(session, systems, since, until, matcher), "pattern"
    if not everything:
        touched = signalled(session, incident_id)
        if touched.ids or touched.conversations:
            return touched, "signals"
    return None, "all"


def _rows(
    found: Iterable[Any], inventory: ToolInventory, key: str | None, limit: int
) -> tuple[list[AffectedRow], bool]:
    """The report's rows (only the calls of the tool `key`, if given), at most `limit`; and
    whether there were more."""
    rows: list[AffectedRow] = []
    for row in found:
        if key is not None and (row.tool_name is None or tool_key(row.tool_name) != key):
            continue
        if len(rows) >= limit:
            return rows, True
        rows.append(report_row(row, inventory))
    return rows, False


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
    session.flush()
    return marked
