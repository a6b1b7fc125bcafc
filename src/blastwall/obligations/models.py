"""Obligation tables: the organisation profile as applied, the obligations raised for an
incident, the facts and clock anchors they are judged on, submissions and reminders fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.obligations.rules import Anchor, SubmissionKind
from blastwall.obligations.schemas import FactState, ObligationStatus


class OrganisationProfile(Base):
    """One application of `organisation.yaml`; the latest row is the profile in force."""

    __tablename__ = "organisation_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(2000), default="")
    applied_by: Mapped[str] = mapped_column(String(200))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Obligation(Base):
    """A rule that matched an incident: a candidate until legal decides."""

    __tablename__ = "obligations"
    __table_args__ = (UniqueConstraint("incident_id", "rule_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[str] = mapped_column(String(100))
    regime: Mapped[str] = mapped_column(String(200))
    pack_version: Mapped[str] = mapped_column(String(100))
    status: Mapped[ObligationStatus] = mapped_column(enum_type(ObligationStatus, 20))
    matches: Mapped[bool] = mapped_column(Boolean, default=True)
    why: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IncidentFact(Base):
    """A fact of an incident that rules are judged on, confirmed or suspected."""

    __tablename__ = "obligation_facts"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    state: Mapped[FactState] = mapped_column(enum_type(FactState, 20))
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ClockAnchor(Base):
    """When a clock starts (awareness, classification as major, ...), set by a person."""

    __tablename__ = "obligation_anchors"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[Anchor] = mapped_column(enum_type(Anchor, 40), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")


class Submission(Base):
    """A report filed for a confirmed obligation, the filed document kept as evidence."""

    __tablename__ = "obligation_submissions"
    __table_args__ = (Index("ix_obligation_submissions_obligation", "obligation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id", ondelete="CASCADE"))
    kind: Mapped[SubmissionKind] = mapped_column(enum_type(SubmissionKind, 20))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reference: Mapped[str] = mapped_column(String(300), default="")
    evidence_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("evidence_items.id"), default=None
    )
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Reminder(Base):
    """A reminder fired, by its key, so that a tick after a restart does not fire it again."""

    __tablename__ = "obligation_reminders"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    obligation_id: Mapped[int] = mapped_column(
        ForeignKey("obligations.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
