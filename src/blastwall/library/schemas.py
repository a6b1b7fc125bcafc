"""API shapes of the known-incident library."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class KnownIncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    external_id: str
    title: str
    occurred: str | None
    year: int | None
    severity: str | None
    description: str
    url: str | None
    tags: list[str]
    atlas: list[str]
    owasp: list[str]
    classifications: dict[str, Any]
    attribution: str
    imported_at: datetime
    external: bool = Field(default=True, description="Always true: not this organisation's.")


class KnownMatch(KnownIncidentOut):
    score: float


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="genai-incidents or atlas")


class ImportOut(BaseModel):
    source: str
    version: str
    added: int
    updated: int
    unknown_ids: dict[str, int] = Field(
        description="Taxonomy ids the source names that the pinned tables do not have "
        "(dropped), with how many records named each."
    )
