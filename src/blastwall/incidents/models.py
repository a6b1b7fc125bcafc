"""Incident tables: the incident, its systems, participants, roles, timeline and tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.incidents.lifecycle import Status
from blastwall.incidents.schemas import (
    Archetype,
    IncidentRole,
    Severity,
    TaskKind,
    TaskState,
    Visibility,
)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_visibility_id", "visibility", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    archetype: Mapped[Archetype] = mapped_column(enum_type(Archetype, 40))
    severity: Mapped[Severity] = mapped_column(enum_type(Severity, 4))
    severity_reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[Status] = mapped_column(enum_type(Status, 20), index=True)
    visibility: Mapped[Visibility] = mapped_column(enum_type(Visibility, 20))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    contained_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    mitigated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class IncidentSystem(Base):
    __tablename__ = "incident_systems"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"), primary_key=True, index=True)


class Participant(Base):
    """Who takes part in an incident; participants see it even when it is restricted."""

    __tablename__ = "incident_participants"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    principal: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RoleAssignment(Base):
    __tablename__ = "incident_roles"
    __table_args__ = (UniqueConstraint("incident_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[IncidentRole] = mapped_column(enum_type(IncidentRole, 40))
    assignee: Mapped[str] = mapped_column(String(200))
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TimelineEntry(Base):
    """One append-only line of an incident's history; rows are never updated."""

    __tablename__ = "timeline_entries"
    __table_args__ = (Index("ix_timeline_incident_id", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ref_id: Mapped[int | None] = mapped_column(ForeignKey("timeline_entries.id"), default=None)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Task(Base):
    __tablename__ = "incident_tasks"
    __table_args__ = (Index("ix_tasks_incident_id", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[TaskKind] = mapped_column(enum_type(TaskKind, 20))
    title: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    due: Mapped[date | None] = mapped_column(Date, default=None)
    state: Mapped[TaskState] = mapped_column(enum_type(TaskState, 20))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
