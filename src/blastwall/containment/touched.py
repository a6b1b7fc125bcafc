"""Reading what an incident touched on its systems in a time range: the interactions of the
range a page at a time, the conversations whose content matches a pattern (the one read of
the whole range), those the incident's signals and evidence name, and then the touched
conversations again through their index."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from blastwall.correlation.models import Candidate
from blastwall.evidence.service import kept_interactions
from blastwall.signals.models import Signal
from blastwall.telemetry.models import Interaction
from blastwall_guard.names import tool_key

PAGE = 500
CHUNK = 500

# The columns the report shows; a pattern also reads the content of the range once.
COLUMNS = (
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


def tool_filter(tool: str) -> ColumnElement[bool]:
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


def in_range(
    query: Select[Any], systems: list[str], since: datetime, until: datetime
) -> Select[Any]:
    return query.where(
        Interaction.system_id.in_(systems),
        Interaction.start_time >= since,
        Interaction.start_time < until,
    )


def newest_first(session: Session, query: Select[Any]) -> Iterator[Any]:
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
class Touched:
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


def matching(
    session: Session, systems: list[str], since: datetime, until: datetime, matcher: re.Pattern[str]
) -> Touched:
    """The conversations with an interaction in the range whose content matches: the one
    read of the whole range."""
    touched = Touched()
    query = in_range(
        select(Interaction.id, Interaction.conversation_id, *_CONTENT), systems, since, until
    )
    for row in newest_first(session, query):
        if matcher.search(_haystack(row)):
            touched.add(row.id, row.conversation_id)
    return touched


def signalled(session: Session, incident_id: int) -> Touched:
    """The interactions and conversations the incident's signals name, and the interactions
    kept as its evidence (collected for its signals, by hand, or from an attached hunt)."""
    touched = Touched()
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
