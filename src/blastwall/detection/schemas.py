"""API shapes of canary tokens and detectors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class CanaryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="The AI system whose system prompt will carry the token."
    )
    note: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None, description="Where the token is placed, e.g. 'refund-policy prompt v8'."
    )


class CanaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    system_id: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    note: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class CanaryCreated(CanaryOut):
    token: str = Field(description="The token, shown only in this answer: embed it now.")


class DetectorOut(BaseModel):
    id: str
    version: str
    description: str
    stateful: bool
    settings: dict[str, Any] = Field(
        description="JSON Schema of the detector's settings (the inventory's "
        "`detection.<id>` entry)."
    )
    failures: int = Field(description="Times it raised since this server process started.")
