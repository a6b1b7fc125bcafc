"""The public status page's own tables: its components (declared in YAML), the status
incidents and maintenances it shows with their updates (a copy of what was published
publicly, never read from the incidents themselves), and its subscribers.

Ids shown on the page are random strings of the page's own: no incident number, system id or
row sequence of the rest of Blastwall reaches a reader through them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow

__all__ = [
    "ComponentStatus",
    "Impact",
    "Phase",
    "StatusComponent",
    "StatusIncident",
    "StatusIncidentUpdate",
    "StatusKind",
    "StatusSubscriber",
    "SubscriberKind",
]


class ComponentStatus(StrEnum):
    """A component's status, in Statuspage's words, from best to worst (`RANK`)."""

    operational = "operational"
    under_maintenance = "under_maintenance"
    degraded_performance = "degraded_performance"
    partial_outage = "partial_outage"
    major_outage = "major_outage"


RANK = {status: rank for rank, status in enumerate(ComponentStatus)}
"""How bad a component status is: where several apply, the worst wins."""


class Phase(StrEnum):
    """A status incident's phase (investigating … resolved), or a maintenance's (scheduled …
    completed)."""

    investigating = "investigating"
    identified = "identified"
    monitoring = "monitoring"
    resolved = "resolved"
    scheduled = "scheduled"
    in_progress = "in_progress"
    verifying = "verifying"
    completed = "completed"


class Impact(StrEnum):
    none = "none"
    minor = "minor"
    major = "major"
    critical = "critical"
    maintenance = "maintenance"


class StatusKind(StrEnum):
    incident = "incident"
    maintenance = "maintenance"


class SubscriberKind(StrEnum):
    email = "email"
    webhook = "webhook"


class StatusComponent(Base):
    """A component of the page: one AI system or a group of them, as declared (its id is
    the declared one, shown on the page)."""

    __tablename__ = "status_components"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    group: Mapped[str | None] = mapped_column(String(200), default=None)
    systems: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """The inventory's AI systems the component stands for (never shown unless `public`)."""
    show_systems: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatusIncident(Base):
    """An incident (or a maintenance) as the page shows it."""

    __tablename__ = "status_incidents"
    __table_args__ = (Index("ix_status_incidents_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[StatusKind] = mapped_column(enum_type(StatusKind, 20))
    source_incident_id: Mapped[int | None] = mapped_column(default=None, unique=True)
    """The incident whose public updates it copies (kept here, never shown)."""
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[Phase] = mapped_column(enum_type(Phase, 20))
    impact: Mapped[Impact] = mapped_column(enum_type(Impact, 20))
    component_status: Mapped[ComponentStatus] = mapped_column(enum_type(ComponentStatus, 30))
    component_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    monitoring_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    scheduled_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class StatusIncidentUpdate(Base):
    __tablename__ = "status_incident_updates"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status_incident_id: Mapped[str] = mapped_column(
        ForeignKey("status_incidents.id", ondelete="CASCADE"), index=True
    )
    source_update_id: Mapped[int | None] = mapped_column(default=None, unique=True)
    """The published update it copies: the same update is recorded once."""
    status: Mapped[Phase] = mapped_column(enum_type(Phase, 20))
    body: Mapped[str] = mapped_column(Text)
    component_status: Mapped[ComponentStatus] = mapped_column(enum_type(ComponentStatus, 30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StatusSubscriber(Base):
    """An address that asked for the page's news, pending until it is confirmed."""

    __tablename__ = "status_subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SubscriberKind] = mapped_column(enum_type(SubscriberKind, 20))
    address: Mapped[str] = mapped_column(String(2000))
    component_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """Component ids; empty: every component."""
    confirm_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """The confirmation link's token, hashed (SHA-256)."""
    unsubscribe_token: Mapped[str] = mapped_column(String(64), unique=True)
    """The token of the unsubscribe link every message carries (it can do nothing else)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
