"""Correlation tables: signal groups (deduplication), incident candidates and noise rules.

A signal group is the definition a repeated signal shares (its fingerprint); the signals
are its occurrences. A candidate gathers groups that look like one incident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.correlation.schemas import Basis, CandidateStatus, NoiseRuleKind
from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.incidents.schemas import Archetype, Severity
from blastwall.signals.schemas import SignalSeverity


class Candidate(Base):
    """Signals that look like one incident, waiting for triage or turned into an incident."""

    __tablename__ = "candidates"
    __table_args__ = (
        Index("ix_candidates_key_id", "key", "id"),
        Index("ix_candidates_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    basis: Mapped[Basis] = mapped_column(enum_type(Basis, 20))  # system, component or report
    component: Mapped[str | None] = mapped_column(String(300), default=None)
    archetype: Mapped[Archetype | None] = mapped_column(enum_type(Archetype, 40), default=None)
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[CandidateStatus] = mapped_column(enum_type(CandidateStatus, 20))
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id"), default=None, index=True
    )
    severity: Mapped[Severity] = mapped_column(enum_type(Severity, 4))
    severity_points: Mapped[int] = mapped_column(Integer, default=0)
    explanation: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    signal_count: Mapped[int] = mapped_column(Integer, default=0)
    group_count: Mapped[int] = mapped_column(Integer, default=0)
    top_signal_severity: Mapped[SignalSeverity] = mapped_column(
        enum_type(SignalSeverity, 20), default="info"
    )
    conversations: Mapped[list[str]] = mapped_column(JSONType, default=list)
    users: Mapped[list[str]] = mapped_column(JSONType, default=list)
    reported_affected: Mapped[int] = mapped_column(Integer, default=0)
    first_signal_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_signal_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    decision_reason: Mapped[str | None] = mapped_column(Text, default=None)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, default=list
    )  # where its archetype comes from; the signals joined by trace or conversation
    evidence: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict
    )  # what its signals showed: reports, successes, leaks, confidence, the baseline rate
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    escalated_to: Mapped[str | None] = mapped_column(
        String(200), default=None
    )  # the triage owner it was escalated to, still pending and growing below the threshold


class CandidateSystem(Base):
    """A system a candidate covers: an inventory id, or the name an unregistered one sent."""

    __tablename__ = "candidate_systems"

    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    system: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class SignalGroup(Base):
    """The signals that share a fingerprint: counted, not repeated."""

    __tablename__ = "signal_groups"
    __table_args__ = (Index("ix_signal_groups_fingerprint_id", "fingerprint", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(200))
    system: Mapped[str | None] = mapped_column(String(200), default=None)
    archetype: Mapped[Archetype | None] = mapped_column(enum_type(Archetype, 40), default=None)
    severity: Mapped[SignalSeverity] = mapped_column(enum_type(SignalSeverity, 20))
    summary: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("signal_groups.id"), default=None)
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id"), default=None, index=True
    )
    held_by: Mapped[str | None] = mapped_column(String(200), default=None)
    evidence_count: Mapped[int] = mapped_column(
        Integer, default=0
    )  # interactions its repeats added to an incident's evidence (capped by a setting)


class NoiseRule(Base):
    """A snooze (signals matching it hold back until it expires) or a maintenance window (a
    system's signals hold back while it lasts)."""

    __tablename__ = "noise_rules"
    __table_args__ = (Index("ix_noise_rules_ends_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[NoiseRuleKind] = mapped_column(
        enum_type(NoiseRuleKind, 20)
    )  # snooze or maintenance
    system_id: Mapped[str | None] = mapped_column(ForeignKey("systems.id"), default=None)
    match: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    reason: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(200), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
