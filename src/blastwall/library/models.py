"""Known incidents from outside the organisation: a reference library for "similar
incidents", each record with its source and attribution."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from blastwall.db import Base, JSONType, UTCDateTime, utcnow


class KnownIncident(Base):
    __tablename__ = "known_incidents"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_known_incidents_year", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))  # genai-incidents, atlas
    external_id: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(500))
    occurred: Mapped[str | None] = mapped_column(String(20), default=None)
    year: Mapped[int | None] = mapped_column(Integer, default=None)
    severity: Mapped[str | None] = mapped_column(String(20), default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(2000), default=None)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    atlas: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """ATLAS ids, checked against the taxonomy tables."""
    owasp: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """OWASP LLM (with edition) and agentic ids, checked against the taxonomy tables."""
    classifications: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """The source's other classifications as it gives them (e.g. its OWASP codes and their
    edition), not taxonomy ids of this product."""
    attribution: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
