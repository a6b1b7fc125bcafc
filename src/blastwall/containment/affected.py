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

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service
from blastwall.containment.schemas import Affected, AffectedRow, ArgumentSum, ToolTotal
from blastwall.correlation.models import Candidate
from blastwall.db import utcnow
from blastwall.errors import InvalidInput, Problem
from blastwall.evidence.service import kept_interactions
from blastwall.incidents import service as incidents
from blastwall.inventory.models import System
from blastwall.inventory.schemas import Tool
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction
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
PAGE = 500
CHUNK = 500

#: A permission whose action is made of these words (and at least one verb) only reads.
READING_VERBS = frozenset(
    {
        "read", "get", "list", "search", "query", "view", "lookup", "describe", "fetch",
        "find", "browse", "retrieve", "show", "inspect", "count", "peek", "watch",
    }
)  # fmt: skip
_QUALIFIERS = frozenset({"only", "all", "any", "own", "public"})
_CURRENCY_KEYS = frozenset({"currency", "currency-code", "ccy"})

Access = Literal["read-only", "writing", "unknown"]


def permission_writes(permission: str) -> bool:
    """Whether a permission lets a tool change something: its action, the part after the
    (last) colon, reads only when its words are reading verbs (`orders:read`,
    `files:read-only`, `tickets:list_all`); anything else writes (`refunds:create`,
    `email:send`, `orders:*`, `orders:read-write`)."""
    words = [w for w in tool_key(permission.rpartition(":")[2]).split("-") if w]
    reads = [w for w in words if w in READING_VERBS]
    return not reads or any(w not in READING_VERBS and w not in _QUALIFIERS for w in words)


@dataclass(frozen=True)
class _Declared:
    """A tool as the inventory declares it (or not) for one system."""

    name: str
    access: Access
    permissions: tuple[str, ...] = ()
    why: str = ""

    @property
    def writes(self) -> bool:
        return self.access != "read-only"


def _declared(tool: Tool) -> _Declared:
    permissions = tuple(tool.permissions)
    if not permissions:
        why = "the inventory declares no permissions for it: counted as writing"
        return _Declared(tool.name, "unknown", (), why)
    writes = any(permission_writes(p) for p in permissions)
    return _Declared(tool.name, "writing" if writes else "read-only", permissions)


@dataclass
class _Inventory:
    """The tools of the incident's systems, by system and canonical name."""

    tools: dict[str | None, dict[str, _Declared]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, systems: list[str]) -> _Inventory:
        rows = session.scalars(select(System).where(System.id.in_(systems)))
        return cls(
            {
                row.id: {tool_key(t.name): _declared(t) for t in row.parsed.components.tools}
                for row in rows
            }
        )

    def tool(self, system_id: str | None, name: str) -> _Declared:
        found = self.tools.get(system_id, {}).get(tool_key(name))
        if found is not None:
            return found
        why = "the inventory does not declare it: counted as writing"
        return _Declared(name, "unknown", (), why)


# The columns the report shows; a pattern also reads the content of the range once.
_COLUMNS = (
    Interaction.id,
    Interaction.system_id,
    Interaction.start_time,
    Interaction.operation,
    Interaction.conversation_id,
    Interaction.user_id,
    Interaction.agent_name,
    Interaction.tool_name,
    Interaction.tool_arguments,
    Interaction.tool_result,
    Interaction.error_type,
)
_CONTENT = (
    Interaction.input_messages,
    Interaction.output_messages,
    Interaction.tool_arguments,
    Interaction.tool_result,
)


def _haystack(row: Any) -> str:
    parts = [row.input_messages, row.output_messages, row.tool_arguments, row.tool_result]
    return "\n".join(orjson.dumps(p).decode() for p in parts if p is not None)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tool_filter(tool: str) -> ColumnElement[bool]:
    """A SQL condition that holds for every spelling of `tool` (and a few other names,
    which `tool_key` then sets apart): `issue-refund` becomes `lower(tool_name) LIKE
    '%issue%refund%'`. There is no index on tool names; it is evaluated on the rows of the
    systems' time range only (index on system and start time). A name that is not ASCII is
    matched in Python alone, as SQLite's lower() folds ASCII only."""
    key = tool_key(tool)
    if not key.isascii():
        return Interaction.tool_name.is_not(None)
    words = [_like(w) for w in key.split("-") if w]
    return func.lower(Interaction.tool_name).like(f"%{'%'.join(words)}%", escape="\\")


def _in_range(
    query: Select[Any], systems: list[str], since: datetime, until: datetime
) -> Select[Any]:
    return query.where(
        Interaction.system_id.in_(systems),
        Interaction.start_time >= since,
        Interaction.start_time < until,
    )


def _newest_first(session: Session, query: Select[Any]) -> Iterator[Any]:
    """The query's rows, newest first, a page at a time (keyset on start time and id)."""
    after: tuple[datetime, int] | None = None
    while True:
        q = query
        if after is not None:
            at, last = after
            q = q.where(
                or_(
                    Interaction.start_time < at,
                    and_(Interaction.start_time == at, Interaction.id < last),
                )
            )
        page = session.execute(
            q.order_by(Interaction.start_time.desc(), Interaction.id.desc()).limit(PAGE)
        ).all()
        yield from page
        if len(page) < PAGE:
            return
        after = (page[-1].start_time, page[-1].id)


@dataclass
class _Touched:
    """The conversations an incident touched, and the interactions it touched that belong
    to no conversation."""

    ids: set[int] = field(default_factory=set)
    conversations: set[str] = field(default_factory=set)

    def add(self, interaction_id: int, conversation_id: str | None) -> None:
        if conversation_id:
            self.conversations.add(conversation_id)
        else:
            self.ids.add(interaction_id)

    def rows(self, session: Session, query: Select[Any]) -> list[Any]:
        """The rows of `query` in these conversations or among these interactions, newest
        first, read through the indexes on conversation and id."""
        found: dict[int, Any] = {}
        for column, values in (
            (Interaction.conversation_id, sorted(self.conversations)),
            (Interaction.id, sorted(self.ids)),
        ):
            for at in range(0, len(values), CHUNK):
                for row in session.execute(query.where(column.in_(values[at : at + CHUNK]))):
                    found[row.id] = row
        return sorted(found.values(), key=lambda r: (r.start_time, r.id), reverse=True)


def _matching(
    session: Session, systems: list[str], since: datetime, until: datetime, matcher: re.Pattern[str]
) -> _Touched:
    """The conversations with an interaction in the range whose content matches: the one
    read of the whole range."""
    touched = _Touched()
    query = _in_range(
        select(Interaction.id, Interaction.conversation_id, *_CONTENT), systems, since, until
    )
    for row in _newest_first(session, query):
        if matcher.search(_haystack(row)):
            touched.add(row.id, row.conversation_id)
    return touched


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
    for at in range(0, len(ordered), CHUNK):
        chunk = ordered[at : at + CHUNK]
        found = session.execute(
            select(Interaction.id, Interaction.conversation_id).where(Interaction.id.in_(chunk))
        )
        for interaction_id, conversation_id in found:
            touched.add(interaction_id, conversation_id)
    return touched


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
    try:
        matcher = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise InvalidInput(
            "The pattern is not a regular expression.", [Problem("pattern", str(exc))]
        ) from None
    touched: _Touched | None = None
    scope = "all"
    if matcher is not None:
        touched, scope = _matching(session, systems, since, until, matcher), "pattern"
    elif not everything:
        touched = _signalled(session, incident.id)
        if touched.ids or touched.conversations:
            scope = "signals"
        else:
            touched = None
    query = _in_range(select(*_COLUMNS), systems, since, until)
    key = tool_key(tool) if tool else None
    if tool:
        query = query.where(_tool_filter(tool))
    found: Iterable[Any] = (
        _newest_first(session, query) if touched is None else touched.rows(session, query)
    )
    inventory = _Inventory.load(session, systems)
    rows: list[AffectedRow] = []
    truncated = False
    for row in found:
        if key is not None and (row.tool_name is None or tool_key(row.tool_name) != key):
            continue
        if len(rows) >= limit:
            truncated = True
            break
        rows.append(_row(row, inventory))
    held = service.quarantined(session, interaction_ids=[r.interaction_id for r in rows])
    for row in rows:
        row.quarantined = row.interaction_id in held
    totals, notes = _totals(rows, inventory)
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
        totals=totals,
        notes=notes,
        conversations=_conversations(rows),
        users=_users(rows),
        side_effects=[r for r in rows if r.side_effect],
        calls=[r for r in rows if r.tool is not None],
        interactions=rows,
        truncated=truncated,
    )


def _row(row: Any, inventory: _Inventory) -> AffectedRow:
    tool = row.tool_name
    writes = tool is not None and inventory.tool(row.system_id, tool).writes
    return AffectedRow(
        interaction_id=row.id,
        system_id=row.system_id,
        at=row.start_time,
        operation=row.operation,
        conversation_id=row.conversation_id,
        user_id=row.user_id,
        agent=row.agent_name,
        tool=tool,
        tool_arguments=row.tool_arguments,
        tool_result=row.tool_result,
        error_type=row.error_type,
        side_effect=writes and row.error_type is None,
        quarantined=False,
    )


@dataclass
class _Tally:
    declared: _Declared
    system_id: str | None
    names: set[str] = field(default_factory=set)
    calls: int = 0
    failed: int = 0
    side_effects: int = 0
    sums: dict[tuple[str, str | None], list[Any]] = field(default_factory=dict)

    def add(self, row: AffectedRow) -> None:
        assert row.tool is not None
        self.names.add(row.tool)
        self.calls += 1
        self.failed += row.error_type is not None
        if not row.side_effect:
            return
        self.side_effects += 1
        arguments = row.tool_arguments if isinstance(row.tool_arguments, dict) else {}
        currency = next(
            (
                v.strip().upper()
                for k, v in arguments.items()
                if tool_key(k) in _CURRENCY_KEYS and isinstance(v, str) and v.strip()
            ),
            None,
        )
        for name, value in arguments.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            total = self.sums.setdefault((name, currency), [Decimal(0), 0, True])
            total[0] += Decimal(str(value))
            total[1] += 1
            total[2] = total[2] and isinstance(value, int)

    def out(self) -> ToolTotal:
        return ToolTotal(
            system_id=self.system_id,
            tool=self.declared.name,
            names=sorted(self.names),
            access=self.declared.access,
            permissions=list(self.declared.permissions),
            writes=self.declared.writes,
            calls=self.calls,
            failed=self.failed,
            side_effects=self.side_effects,
            sums=[
                ArgumentSum(
                    argument=name,
                    currency=currency,
                    total=int(total) if whole else float(total),
                    side_effects=n,
                )
                for (name, currency), (total, n, whole) in sorted(
                    self.sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
                )
            ],
        )


def _totals(rows: list[AffectedRow], inventory: _Inventory) -> tuple[list[ToolTotal], list[str]]:
    """Per tool of each system: calls, failed calls, side effects and their sums; and a note
    for each tool counted as writing for want of declared permissions."""
    tallies: dict[tuple[str | None, str], _Tally] = {}
    for row in rows:
        if row.tool is None:
            continue
        key = (row.system_id, tool_key(row.tool))
        if key not in tallies:
            tallies[key] = _Tally(inventory.tool(row.system_id, row.tool), row.system_id)
        tallies[key].add(row)
    totals = sorted(
        (t.out() for t in tallies.values()),
        key=lambda t: (-t.side_effects, -t.calls, t.system_id or "", t.tool),
    )
    notes = [
        f"{t.declared.name} ({t.system_id or 'no system'}): {t.declared.why}"
        for t in tallies.values()
        if t.declared.why
    ]
    return totals, sorted(notes)


def _conversations(rows: list[AffectedRow]) -> list[dict[str, Any]]:
    conversations: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.at, r.interaction_id)):
        if not row.conversation_id:
            continue
        entry = conversations.setdefault(
            row.conversation_id,
            {
                "conversation_id": row.conversation_id,
                "user_id": row.user_id,
                "first": row.at,
                "last": row.at,
                "interactions": 0,
                "calls": 0,
                "side_effects": 0,
            },
        )
        entry["last"] = row.at
        entry["interactions"] += 1
        entry["calls"] += int(row.tool is not None)
        entry["side_effects"] += int(row.side_effect)
    return list(conversations.values())


def _users(rows: list[AffectedRow]) -> list[dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.at, r.interaction_id)):
        if not row.user_id:
            continue
        user = users.setdefault(
            row.user_id, {"user_id": row.user_id, "conversations": set(), "interactions": 0}
        )
        user["interactions"] += 1
        if row.conversation_id:
            user["conversations"].add(row.conversation_id)
    return [{**u, "conversations": len(u["conversations"])} for u in users.values()]


def totals_lines(affected: Affected) -> list[str]:
    """The report's head in words, one line per tool (sums per currency), then the notes."""
    lines: list[str] = []
    for t in affected.totals:
        line = f"{t.tool} ({t.system_id}, {t.access}): {t.calls} call(s)"
        line += f", {t.failed} failed" if t.failed else ""
        line += f", {t.side_effects} side effect(s)" if t.writes else ""
        by_currency: dict[str | None, list[str]] = {}
        for s in t.sums:
            by_currency.setdefault(s.currency, []).append(f"{s.argument} {s.total}")
        for currency, sums in by_currency.items():
            line += f"; {currency + ': ' if currency else ''}{', '.join(sums)}"
        lines.append(line)
    return lines + [f"note: {n}" for n in affected.notes]


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
    "error_type",
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
    session.flush()
    return marked
