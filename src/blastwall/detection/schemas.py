"""API shapes of canary tokens and detectors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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


class WorkersOut(BaseModel):
    workers: int = Field(description="Worker processes of this server process.")
    running: int = Field(description="Of those, how many are alive now.")
    submitted: int = Field(description="Batches handed to them since the server started.")
    done: int = Field(description="Batches they have run and stored.")
    pending: int = Field(description="Batches handed over and not done yet: the backlog.")
    signals: int = Field(description="Signals they stored.")
    dropped: int = Field(
        description="Batches left out of detection because a worker stayed behind (stored, "
        "never run through the detectors)."
    )
    lost: int = Field(description="Batches a worker held when it died.")


class DetectionOut(BaseModel):
    mode: Literal["workers", "inline", "off"] = Field(
        description="workers: detectors in worker processes beside the server; inline: in "
        "the ingest request (BLASTWALL_DETECTION_WORKERS=0); off: BLASTWALL_DETECTION=false."
    )
    workers: WorkersOut | None = None
