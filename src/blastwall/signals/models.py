"""Signals: everything that says "something may be wrong" — an alert, a detector finding,
a guardrail verdict, a person's report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.incidents.schemas import Archetype
from blastwall.signals.schemas import SignalSeverity, SignalStatus


class Signal(Base):
    __tablename__ = "signals"
    __table_args__ = (
        Index("ix_signals_system_created", "system_id", "created_at"),
        Index("ix_signals_source_fingerprint", "source", "fingerprint"),
        Index("ix_signals_conversation", "conversation_id"),
        Index("ix_signals_trace", "trace_id"),
        Index("ix_signals_detector_created", "detector", "created_at"),
        Index("ix_signals_held_by", "held_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(200))
    system_id: Mapped[str | None] = mapped_column(ForeignKey("systems.id"), default=None)
    system_ref: Mapped[str | None] = mapped_column(
        String(200), default=None
    )  # the system as the sender named it, kept when it is not in the inventory
    archetype: Mapped[Archetype | None] = mapped_column(enum_type(Archetype, 40), default=None)
    severity: Mapped[SignalSeverity] = mapped_column(enum_type(SignalSeverity, 20))
    status: Mapped[SignalStatus] = mapped_column(enum_type(SignalStatus, 20), default="firing")
    summary: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    trace_id: Mapped[str | None] = mapped_column(String(32), default=None)
    conversation_id: Mapped[str | None] = mapped_column(String(200), default=None)
    fingerprint: Mapped[str | None] = mapped_column(String(200), default=None)
    reference: Mapped[str | None] = mapped_column(String(40), default=None, unique=True)
    detector: Mapped[str | None] = mapped_column(String(100), default=None)
    detector_version: Mapped[str | None] = mapped_column(String(40), default=None)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    excerpt: Mapped[str | None] = mapped_column(Text, default=None)
    interaction_ids: Mapped[list[int] | None] = mapped_column(JSONType, default=None)
    owasp: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    atlas: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("signal_groups.id"), default=None, index=True
    )
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id"), default=None, index=True
    )
    held_by: Mapped[str | None] = mapped_column(
        String(200), default=None
    )  # the snooze, maintenance window or inhibition that kept it from a candidate of its own
    linked_by: Mapped[str | None] = mapped_column(
        String(250), default=None
    )  # `trace:<id>` or `conversation:<id>`: what joined it to the candidate of another signal
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignalRequest(Base):
    """A `POST /signals` or `POST /reports` sent with an `Idempotency-Key`: who sent it, a hash
    of its body and the signal it created, so that a retry is answered that signal again."""

    __tablename__ = "signal_requests"
    __table_args__ = (UniqueConstraint("principal", "route", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    principal: Mapped[str] = mapped_column(String(200))
    route: Mapped[str] = mapped_column(String(20))  # signals, reports
    idempotency_key: Mapped[str] = mapped_column(String(255))
    body_sha256: Mapped[str] = mapped_column(String(64))
    signal_id: Mapped[int | None] = mapped_column(
        ForeignKey("signals.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
