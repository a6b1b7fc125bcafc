"""Containment tables: actions on AI systems' controls, the evidence snapshot taken before each
change, the revision of each system's control state, and outputs marked quarantined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.auth.roles import Role
from blastwall.containment.schemas import ActionState
from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.inventory.schemas import Control
from blastwall.telemetry.models import BigId


class ContainmentAction(Base):
    """One control applied (or asked for) on one AI system under an incident.

    The active actions of a system are its current control state."""

    __tablename__ = "containment_actions"
    __table_args__ = (
        Index("ix_containment_actions_system_state", "system_id", "state"),
        Index("ix_containment_actions_incident_id", "incident_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"))
    control: Mapped[Control] = mapped_column(enum_type(Control, 40))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[ActionState] = mapped_column(enum_type(ActionState, 20))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_role: Mapped[Role] = mapped_column(enum_type(Role, 20))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, index=True)
    ended_by: Mapped[str | None] = mapped_column(String(200), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    end_reason: Mapped[str | None] = mapped_column(Text, default=None)
    snapshot_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # Verification by telemetry: how long the behaviour may take to stop, the verdict
    # (pending, verified, breached, unverified), when it was reached, and why.
    grace_seconds: Mapped[int] = mapped_column(Integer, default=30)
    verification: Mapped[str | None] = mapped_column(String(20), default=None)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    verification_note: Mapped[str | None] = mapped_column(Text, default=None)
    breach_signal_id: Mapped[int | None] = mapped_column(Integer, default=None)
    watched_to_id: Mapped[int | None] = mapped_column(BigId, default=None)  # last interaction

    def describe(self) -> str:
        """The action in words, for timelines and signals: `revoke_tool(tool=x) on system`."""
        params = ", ".join(f"{k}={v}" for k, v in sorted((self.params or {}).items()))
        control = f"{self.control}({params})" if params else self.control
        return f"{control} on {self.system_id}"


class ControlSnapshot(Base):
    """Evidence preserved before a change: the system's control state and its recent
    interactions, with the SHA-256 of the canonical JSON of both."""

    __tablename__ = "containment_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"))
    action_id: Mapped[int] = mapped_column(ForeignKey("containment_actions.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(20))
    taken_by: Mapped[str] = mapped_column(String(200))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    sha256: Mapped[str] = mapped_column(String(64))


class ControlRevision(Base):
    """A counter per system, raised by every change to its control state; guards compare it."""

    __tablename__ = "control_revisions"

    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QuarantinedOutput(Base):
    """An interaction whose output is held for review under an incident."""

    __tablename__ = "quarantined_outputs"
    __table_args__ = (UniqueConstraint("incident_id", "interaction_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    interaction_id: Mapped[int] = mapped_column(BigId, ForeignKey("interactions.id"), index=True)
    marked_by: Mapped[str] = mapped_column(String(200))
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(Text)


class ToolApproval(Base):
    """A guard's request for a person's approval of one tool call, while the tool (or every
    tool) of the system requires approval; decided by an approver in Blastwall."""

    __tablename__ = "tool_approvals"
    __table_args__ = (Index("ix_tool_approvals_system_state", "system_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"))
    action_id: Mapped[int] = mapped_column(ForeignKey("containment_actions.id"), index=True)
    tool: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    agent: Mapped[str | None] = mapped_column(String(200), default=None)
    state: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class HeldOutput(Base):
    """An output a guard held back while `quarantine_output` is in force, kept for a person to
    review: released (the application may deliver it) or discarded."""

    __tablename__ = "held_outputs"
    __table_args__ = (Index("ix_held_outputs_system_state", "system_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"))
    action_id: Mapped[int] = mapped_column(ForeignKey("containment_actions.id"))
    text: Mapped[str] = mapped_column(Text)
    conversation_id: Mapped[str | None] = mapped_column(String(200), default=None)
    state: Mapped[str] = mapped_column(String(20), default="held")  # held, released, discarded
    held_by: Mapped[str] = mapped_column(String(200))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
