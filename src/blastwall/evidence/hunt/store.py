"""Stored hunts and their matches: storage only (add and flush); the runner commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.db import utcnow
from blastwall.errors import NotFound
from blastwall.evidence.hunt.query import compile_query
from blastwall.evidence.hunt.scan import Found
from blastwall.evidence.models import Hunt, HuntMatch
from blastwall.evidence.schemas import HuntIn
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.telemetry.models import Interaction
from blastwall_guard.names import tool_key


def create_hunt(session: Session, *, data: HuntIn, actor: Principal) -> Hunt:
    """Check and store a hunt (state queued); `run_hunt` runs it."""
    actor.require(Permission.see_content)
    compile_query(
        session, mode=data.mode.value, query=data.query, system_id=data.system, since=data.since
    )
    row = Hunt(
        mode=data.mode,
        query=data.query,
        system_id=data.system,
        since=data.since,
        state="queued",
        created_by=actor.name,
        created_at=utcnow(),
        summary={},
    )
    session.add(row)
    session.flush()
    return row


def get_hunt(session: Session, *, hunt_id: int, principal: Principal) -> Hunt:
    principal.require(Permission.see_content)
    row = session.get(Hunt, hunt_id)
    if row is None:
        raise NotFound(f"No hunt {hunt_id}. `GET /api/v1/hunts` lists them.")
    return row


def list_hunts(
    session: Session, *, principal: Principal, limit: int, cursor: str | None = None
) -> tuple[list[Hunt], str | None]:
    """Hunts, newest first."""
    principal.require(Permission.see_content)
    query = select(Hunt).order_by(Hunt.id.desc())
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(Hunt.id < after[0])
    return fetch_page(session, query, limit=limit)


def list_matches(
    session: Session, *, hunt_id: int, principal: Principal, limit: int, cursor: str | None = None
) -> tuple[list[HuntMatch], str | None]:
    """A hunt's matches in interaction order."""
    hunt = get_hunt(session, hunt_id=hunt_id, principal=principal)
    query = select(HuntMatch).where(HuntMatch.hunt_id == hunt.id)
    after = decode_cursor(cursor, types=(int,))
    if after:
        query = query.where(HuntMatch.id > after[0])
    return fetch_page(session, query.order_by(HuntMatch.id), limit=limit)


def store_matches(session: Session, hunt: Hunt, found: list[Found]) -> None:
    by_id = {f.interaction_id: f for f in found}
    rows = session.execute(
        select(
            Interaction.id,
            Interaction.trace_id,
            Interaction.conversation_id,
            Interaction.user_id,
            Interaction.system_id,
            Interaction.tool_name,
            Interaction.start_time,
        ).where(Interaction.id.in_(list(by_id)))
    ).all()
    for iid, trace, conversation, user, system, tool, at in sorted(rows):
        hit = by_id[iid]
        session.add(
            HuntMatch(
                hunt_id=hunt.id,
                interaction_id=iid,
                field=hit.field,
                excerpt=hit.excerpt,
                trace_id=trace,
                conversation_id=conversation,
                user_id=user,
                system_id=system,
                tool_name=tool,
                at=at,
            )
        )


def summary(session: Session, hunt: Hunt) -> dict[str, Any]:
    """Conversations, users and tool side effects (tool calls in the matched traces)."""
    matches = HuntMatch.hunt_id == hunt.id
    conversations = session.execute(
        select(HuntMatch.conversation_id, func.count())
        .where(matches, HuntMatch.conversation_id.is_not(None))
        .group_by(HuntMatch.conversation_id)
        .order_by(func.count().desc(), HuntMatch.conversation_id)
        .limit(1000)
    ).all()
    # A tool call or retrieval seldom carries the user: take the user of its trace then.
    trace_user = (
        select(Interaction.user_id)
        .where(Interaction.trace_id == HuntMatch.trace_id, Interaction.user_id.is_not(None))
        .order_by(Interaction.id)
        .limit(1)
        .scalar_subquery()
    )
    user = func.coalesce(HuntMatch.user_id, trace_user)
    users = session.execute(
        select(user, func.count())
        .where(matches, user.is_not(None))
        .group_by(user)
        .order_by(func.count().desc(), user)
        .limit(1000)
    ).all()
    traces = select(HuntMatch.trace_id).where(matches).distinct()
    spellings = session.execute(
        select(
            Interaction.tool_name,
            func.count(),
            func.count(Interaction.error_type),
            func.min(Interaction.id),
        )
        .where(Interaction.trace_id.in_(traces), Interaction.operation == "execute_tool")
        .group_by(Interaction.tool_name)
        .order_by(func.count().desc(), func.min(Interaction.id))
        .limit(1000)
    ).all()
    return {
        "conversations": [{"id": c, "matches": n} for c, n in conversations],
        "users": [{"id": u, "matches": n} for u, n in users],
        "tool_side_effects": _by_tool(spellings)[:200],
    }


def _by_tool(spellings: Sequence[Any]) -> list[dict[str, Any]]:
    """Tool calls per tool, its spellings (`issue_refund`, `Issue-Refund`) counted as one
    (`tool_key`) under the most used; `failed`: calls whose span carries an error type."""
    tools: dict[str | None, dict[str, Any]] = {}
    for name, calls, failed, first in spellings:  # most calls first
        key = tool_key(name) if name is not None else None
        if key not in tools:
            tools[key] = {"tool": name, "names": [], "calls": 0, "failed": 0}
            tools[key]["first_interaction"] = first
        tool = tools[key]
        tool["names"].append(name)
        tool["calls"] += calls
        tool["failed"] += failed
        tool["first_interaction"] = min(tool["first_interaction"], first)
    for tool in tools.values():
        tool["names"] = sorted(n for n in tool["names"] if n is not None)
    return sorted(tools.values(), key=lambda t: (-t["calls"], t["first_interaction"]))
