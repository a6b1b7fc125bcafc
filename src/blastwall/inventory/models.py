"""Inventory tables: AI systems, their component index and the change log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, enum_type, utcnow
from blastwall.inventory.schemas import ChangeKind, RiskTier, SystemSpec, SystemType


class System(Base):
    """An AI system; `spec` holds its whole declaration as applied."""

    __tablename__ = "systems"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(2000))
    type: Mapped[SystemType] = mapped_column(enum_type(SystemType, 32))
    owner_team: Mapped[str] = mapped_column(String(2000))
    risk_tier: Mapped[RiskTier] = mapped_column(enum_type(RiskTier, 32))
    eu_ai_act_high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def parsed(self) -> SystemSpec:
        """`spec` read through its model, validated once per value `spec` takes (a new
        value is assigned, or loaded when the row is refreshed)."""
        cached: tuple[dict[str, Any], SystemSpec] | None = self.__dict__.get("_parsed")
        if cached is None or cached[0] is not self.spec:
            cached = (self.spec, SystemSpec.model_validate(self.spec))
            self.__dict__["_parsed"] = cached
        return cached[1]


class SystemComponent(Base):
    """One component of a system, indexed so systems sharing it can be found."""

    __tablename__ = "system_components"
    __table_args__ = (Index("ix_system_components_kind_key", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(500))


class Change(Base):
    """One recorded change to a system: an inventory edit, a deploy, a prompt or model change,
    a flag flip."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_system_at", "system_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id"))
    kind: Mapped[ChangeKind] = mapped_column(enum_type(ChangeKind, 32))
    summary: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(300), default=None)
    before: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True, default=None)
    actor: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(300), default=None)
    ref: Mapped[str | None] = mapped_column(String(500), default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ComponentVersion(Base):
    """A version of a system's prompt or model, with its content hash and when it became
    current: from an applied inventory or a recorded prompt or model change."""

    __tablename__ = "component_versions"
    __table_args__ = (
        Index("ix_component_versions_component", "system_id", "kind", "component_id", "since"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("systems.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # prompt or model
    component_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(2000))
    content_hash: Mapped[str | None] = mapped_column(String(80), default=None)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(300))
    change_id: Mapped[int | None] = mapped_column(ForeignKey("changes.id"), default=None)
