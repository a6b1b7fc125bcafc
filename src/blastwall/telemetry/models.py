"""Telemetry tables: interactions (GenAI spans, normalised), context spans, ingest keys.

A span is stored once per system: interactions and context spans each have a unique index on
(trace id, span id, system id), the system id of a span of no known system counting as ''
(a unique index holds NULLs apart: those spans would be stored again on every resend). The
index starts with the trace id, so it also serves the look-ups of a trace's spans.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, utcnow

# Integer primary keys that are BIGINT on PostgreSQL and INTEGER (the rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Interaction(Base):
    """One GenAI span (model call, tool call, agent step, retrieval, guardrail), normalised
    from whichever convention the instrumentation used."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_system_start", "system_id", "start_time"),
        Index("ix_interactions_conversation", "conversation_id"),
        Index("ix_interactions_user", "user_id"),
        Index("ix_interactions_start", "start_time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16), default=None)
    system_id: Mapped[str | None] = mapped_column(ForeignKey("systems.id"), default=None)
    service_name: Mapped[str | None] = mapped_column(String(200), default=None)
    name: Mapped[str] = mapped_column(String(500))
    schema: Mapped[str] = mapped_column(String(40))
    operation: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    request_model: Mapped[str | None] = mapped_column(String(200), default=None)
    response_model: Mapped[str | None] = mapped_column(String(200), default=None)
    conversation_id: Mapped[str | None] = mapped_column(String(200), default=None)
    user_id: Mapped[str | None] = mapped_column(String(200), default=None)
    agent_name: Mapped[str | None] = mapped_column(String(200), default=None)
    system_instructions_hash: Mapped[str | None] = mapped_column(String(71), default=None)
    system_instructions: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    input_messages: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    output_messages: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    tool_name: Mapped[str | None] = mapped_column(String(200), default=None)
    tool_call_id: Mapped[str | None] = mapped_column(String(200), default=None)
    tool_arguments: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    tool_result: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    data_source: Mapped[str | None] = mapped_column(String(200), default=None)
    input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    finish_reasons: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    error_type: Mapped[str | None] = mapped_column(String(200), default=None)
    content_policy: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    latency_ms: Mapped[float] = mapped_column(Float)
    attributes: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContextSpan(Base):
    """A span of an AI system's trace that is not a GenAI operation (an HTTP handler, a
    database query): kept so the trace tree around an interaction can be shown."""

    __tablename__ = "context_spans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(32))
    span_id: Mapped[str] = mapped_column(String(16))
    parent_span_id: Mapped[str | None] = mapped_column(String(16), default=None)
    system_id: Mapped[str | None] = mapped_column(ForeignKey("systems.id"), default=None)
    service_name: Mapped[str | None] = mapped_column(String(200), default=None)
    name: Mapped[str] = mapped_column(String(500))
    kind: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    attributes: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


SPAN_KEY = ("trace_id", "span_id", "system_id")
"""The columns of the unique index of interactions and context spans."""

Index(
    "uq_interactions_span",
    Interaction.trace_id,
    Interaction.span_id,
    func.coalesce(Interaction.system_id, ""),
    unique=True,
)
Index(
    "uq_context_spans_span",
    ContextSpan.trace_id,
    ContextSpan.span_id,
    func.coalesce(ContextSpan.system_id, ""),
    unique=True,
)


class IngestKey(Base):
    """A per-system key for telemetry senders; only its SHA-256 is stored."""

    __tablename__ = "ingest_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ContentCapture(Base):
    """Whether a system's GenAI model calls arrive with their prompts and outputs: `on`, or
    `off` (the instrumentation does not capture content, and the detectors are blind). No row:
    no model call of the system seen yet (`unknown`). Written only when the state changes."""

    __tablename__ = "content_capture"

    system_id: Mapped[str] = mapped_column(
        ForeignKey("systems.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(8))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
