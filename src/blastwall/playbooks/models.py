"""A playbook attached to an incident is a checklist: one row per step that applies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, UTCDateTime, enum_type, utcnow
from blastwall.inventory.schemas import Control
from blastwall.playbooks.library import StepKind


class ChecklistStep(Base):
    __tablename__ = "checklist_steps"
    __table_args__ = (
        UniqueConstraint("incident_id", "playbook_id", "step_id"),
        Index("ix_checklist_incident", "incident_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    playbook_id: Mapped[str] = mapped_column(String(80))
    playbook_version: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[StepKind] = mapped_column(enum_type(StepKind, 20))
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text, default="")
    control: Mapped[Control | None] = mapped_column(enum_type(Control, 40), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(40), default=None)
    options: Mapped[str | None] = mapped_column(Text, default=None)
    """The options of a decision, one per line."""
    state: Mapped[str] = mapped_column(String(20), default="open")  # open, done, skipped
    outcome: Mapped[str | None] = mapped_column(String(200), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    completed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    action_id: Mapped[int | None] = mapped_column(Integer, default=None)
    """The containment action that carried the step out (or that it waits for)."""
    attached_by: Mapped[str] = mapped_column(String(200))
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
