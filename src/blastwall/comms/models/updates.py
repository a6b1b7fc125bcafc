"""Status update tables: the updates in the "what we know" form, the reminders fired for
their cadence, and the snoozes of a cadence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow

__all__ = [
    "CadenceSnooze",
    "ComponentStatus",
    "Impact",
    "Phase",
    "StatusUpdate",
    "UpdateReminder",
    "UpdateState",
]


class UpdateState(StrEnum):
    draft = "draft"
    awaiting_approval = "awaiting_approval"
    published = "published"


class Phase(StrEnum):
    """Where the response stands, in Statuspage's words."""

    investigating = "investigating"
    identified = "identified"
    monitoring = "monitoring"
    resolved = "resolved"


class Impact(StrEnum):
    none = "none"
    minor = "minor"
    major = "major"
    critical = "critical"


class ComponentStatus(StrEnum):
    operational = "operational"
    degraded_performance = "degraded_performance"
    partial_outage = "partial_outage"
    major_outage = "major_outage"
    under_maintenance = "under_maintenance"


class StatusUpdate(Base):
    """One update to one audience. Its sections hold one item a line; once published it is
    never changed, and `rendered` keeps what each reader got: the audience's rendering and the
    responders'."""

    __tablename__ = "status_updates"
    __table_args__ = (
        Index("ix_status_updates_incident", "incident_id", "audience", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(40))
    state: Mapped[UpdateState] = mapped_column(enum_type(UpdateState, 20))
    title: Mapped[str] = mapped_column(String(300))
    what_happened: Mapped[str] = mapped_column(Text, default="")
    what_we_are_testing: Mapped[str] = mapped_column(Text, default="")
    what_we_are_doing: Mapped[str] = mapped_column(Text, default="")
    what_we_dont_know: Mapped[str] = mapped_column(Text, default="")
    next_update_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    phase: Mapped[Phase] = mapped_column(enum_type(Phase, 20))
    impact: Mapped[Impact] = mapped_column(enum_type(Impact, 20))
    component_status: Mapped[ComponentStatus] = mapped_column(enum_type(ComponentStatus, 30))
    author: Mapped[str] = mapped_column(String(200))
    submitted_by: Mapped[str | None] = mapped_column(String(200), default=None)
    approver: Mapped[str | None] = mapped_column(String(200), default=None)
    published_by: Mapped[str | None] = mapped_column(String(200), default=None)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    no_change_of: Mapped[int | None] = mapped_column(ForeignKey("status_updates.id"), default=None)
    rendered: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UpdateReminder(Base):
    """A reminder fired for an update that was due: its key is fired once, ever."""

    __tablename__ = "update_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    audience: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CadenceSnooze(Base):
    """An incident's cadence to one audience held until `until`, and why."""

    __tablename__ = "cadence_snoozes"
    __table_args__ = (Index("ix_cadence_snoozes_incident", "incident_id", "audience"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(String(40))
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    snoozed_by: Mapped[str] = mapped_column(String(200))
    snoozed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
