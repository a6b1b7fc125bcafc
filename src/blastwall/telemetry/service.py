"""The only way into telemetry storage: which system a span belongs to, ingest keys,
queries. Ingest itself, which hands the stored spans on to detection, is
`telemetry.flows.ingest`."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.orm import Session

from blastwall.auth.service import hash_token
from blastwall.db import revoke
from blastwall.errors import AuthenticationRequired, NotFound
from blastwall.inventory.models import System
from blastwall.pagination import decode_cursor, fetch_page
from blastwall.signals.schemas import refuse_nul
from blastwall.telemetry.models import ContextSpan, IngestKey, Interaction
from blastwall.telemetry.otlp import DecodedSpan

log = logging.getLogger("blastwall.telemetry")
INTERACTIONS: Table = Interaction.metadata.tables["interactions"]
CONTEXT_SPANS: Table = ContextSpan.metadata.tables["context_spans"]

KEY_PREFIX = "bwi_"
SYSTEM_ATTRIBUTE = "blastwall.system.id"
# Spans of systems missing from the inventory are stored with this policy: nobody has
# declared what may be kept of them.
UNREGISTERED_POLICY = "redacted"
CONTENT_FIELDS = (
    "system_instructions",
    "input_messages",
    "output_messages",
    "tool_arguments",
    "tool_result",
)


# --- which system a span belongs to -------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    """System ids and OpenTelemetry service names, each to (system id, content policy)."""

    names: dict[str, tuple[str, str]]
    ids: frozenset[str]
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolve(self, span: DecodedSpan) -> tuple[str | None, str | None]:
        """(system id or None, the name the span gave itself)."""
        explicit = span.resource.get(SYSTEM_ATTRIBUTE)
        service = span.resource.get("service.name")
        for candidate in (explicit, service):
            if isinstance(candidate, str) and candidate in self.names:
                return self.names[candidate][0], candidate
        named = explicit if isinstance(explicit, str) else service
        return None, named if isinstance(named, str) else None

    def spec(self, system_id: str | None) -> dict[str, Any] | None:
        """The system's inventory entry; None for an unregistered system."""
        return self.specs.get(system_id) if system_id is not None else None

    def policy(self, system_id: str | None) -> str:
        entry = self.names.get(system_id) if system_id is not None else None
        return entry[1] if entry is not None else UNREGISTERED_POLICY


_directory_cache: dict[tuple[str, int, Any], Directory] = {}


def directory(session: Session) -> Directory:
    """The current directory, rebuilt only when the inventory changed."""
    count, latest = session.execute(
        select(func.count(System.id), func.max(System.updated_at))
    ).one()
    key = (str(session.get_bind().engine.url), count, latest)
    cached = _directory_cache.get(key)
    if cached is not None:
        return cached
    names: dict[str, tuple[str, str]] = {}
    specs: dict[str, dict[str, Any]] = {}
    for row in session.scalars(select(System)):
        specs[row.id] = row.spec
        telemetry = row.parsed.telemetry
        entry = (row.id, telemetry.content_policy.value)
        for name in telemetry.service_names:
            names.setdefault(name, entry)
        names[row.id] = entry
    built = Directory(names=names, ids=frozenset(n[0] for n in names.values()), specs=specs)
    _directory_cache.clear()
    _directory_cache[key] = built
    return built


# --- ingest -------------------------------------------------------------------------------


@dataclass
class IngestResult:
    accepted: int = 0
    """Spans acknowledged: stored now, or stored before (`duplicates`)."""
    rejected: int = 0
    interactions: int = 0
    """Interactions stored by this request."""
    context_spans: int = 0
    """Context spans stored by this request."""
    duplicates: int = 0
    """Spans accepted that were stored already (a resend), or twice in the request."""
    signals: int = 0
    errors: list[str] = field(default_factory=list)
    unregistered: set[str] = field(default_factory=set)


def ns(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1000 / 1e6, tz=UTC)


# --- ingest keys --------------------------------------------------------------------------


def create_key(session: Session, *, system_id: str, created_by: str) -> tuple[IngestKey, str]:
    """Issue an ingest key for one system; the secret is answered this once."""
    if session.get(System, system_id) is None:
        raise NotFound(f"No AI system '{system_id}'. `blastwall inventory list` shows the ids.")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = IngestKey(
        system_id=system_id, key_hash=hash_token(secret), prefix=secret[:10], created_by=created_by
    )
    session.add(row)
    session.flush()
    return row, secret


def list_keys(session: Session, *, system_id: str | None = None) -> list[IngestKey]:
    query = select(IngestKey).order_by(IngestKey.id)
    if system_id:
        query = query.where(IngestKey.system_id == system_id)
    return list(session.scalars(query))


def revoke_key(session: Session, *, key_id: int) -> IngestKey:
    return revoke(
        session,
        IngestKey,
        key_id,
        missing=f"No ingest key {key_id}. `blastwall telemetry key list` shows them.",
    )


def system_for_key(session: Session, *, key: str) -> str:
    row = session.scalar(select(IngestKey).where(IngestKey.key_hash == hash_token(key)))
    if row is None or row.revoked_at is not None:
        raise AuthenticationRequired(
            "The ingest key is unknown or revoked. Issue one with "
            "`blastwall telemetry key create --system SYSTEM`."
        )
    return row.system_id


# --- queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionFilter:
    system_id: str | None = None
    unregistered: bool = False
    conversation_id: str | None = None
    user_id: str | None = None
    operation: str | None = None
    model: str | None = None
    tool: str | None = None
    trace_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_interactions(
    session: Session, *, where: InteractionFilter, limit: int, cursor: str | None = None
) -> tuple[list[Interaction], str | None]:
    """Interactions newest first (by start time)."""
    refuse_nul(
        "query",
        {
            "system": where.system_id,
            "conversation": where.conversation_id,
            "user": where.user_id,
            "operation": where.operation,
            "model": where.model,
            "tool": where.tool,
            "trace": where.trace_id,
        },
    )
    q = select(Interaction).order_by(Interaction.start_time.desc(), Interaction.id.desc())
    if where.system_id:
        q = q.where(Interaction.system_id == where.system_id)
    if where.unregistered:
        q = q.where(Interaction.system_id.is_(None))
    for column, value in (
        (Interaction.conversation_id, where.conversation_id),
        (Interaction.user_id, where.user_id),
        (Interaction.operation, where.operation),
        (Interaction.tool_name, where.tool),
        (Interaction.trace_id, where.trace_id),
    ):
        if value:
            q = q.where(column == value)
    if where.model:
        q = q.where(
            or_(Interaction.request_model == where.model, Interaction.response_model == where.model)
        )
    if where.since:
        q = q.where(Interaction.start_time >= where.since)
    if where.until:
        q = q.where(Interaction.start_time < where.until)
    after = decode_cursor(cursor, types=(datetime, int))
    if after:
        at, last_id = after
        q = q.where(
            or_(
                Interaction.start_time < at,
                and_(Interaction.start_time == at, Interaction.id < last_id),
            )
        )
    return fetch_page(session, q, limit=limit, key=lambda i: [i.start_time.isoformat(), i.id])


def get_interaction(session: Session, *, interaction_id: int) -> Interaction:
    row = session.get(Interaction, interaction_id)
    if row is None:
        raise NotFound(f"No interaction {interaction_id}.")
    return row


def trace_spans(session: Session, *, trace_id: str) -> tuple[list[Interaction], list[ContextSpan]]:
    interactions = list(
        session.scalars(
            select(Interaction).where(Interaction.trace_id == trace_id).order_by(Interaction.id)
        )
    )
    context = list(
        session.scalars(
            select(ContextSpan).where(ContextSpan.trace_id == trace_id).order_by(ContextSpan.id)
        )
    )
    if not interactions and not context:
        raise NotFound(f"No spans stored for trace {trace_id}.")
    return interactions, context


def unregistered_services(session: Session) -> list[dict[str, Any]]:
    """AI services that sent telemetry but are not in the inventory, with counts."""
    q = (
        select(
            Interaction.service_name,
            func.count(),
            func.min(Interaction.received_at),
            func.max(Interaction.received_at),
        )
        .where(Interaction.system_id.is_(None))
        .group_by(Interaction.service_name)
        .order_by(func.count().desc())
    )
    return [
        {"service_name": name, "interactions": count, "first_seen": first, "last_seen": last}
        for name, count, first, last in session.execute(q)
    ]
