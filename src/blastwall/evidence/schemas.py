"""API shapes of evidence items, custody records, holds, grants, ledger reports and hunts."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Reason = Annotated[str, StringConstraints(min_length=3, max_length=2000, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Ids = Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=10000)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    kind: str
    sha256: str
    size: int
    media_type: str
    name: str
    source: str
    note: str
    collected_by: str
    collected_at: datetime
    record_seq: int = Field(description="The ledger record of the collection.")
    state: str = Field(description="kept, expired or deleted")
    removed_at: datetime | None


class AccessIn(In):
    reason: Reason = Field(description="Why you look: recorded in the chain of custody.")


class ContentOut(BaseModel):
    item: ItemOut
    view: str = Field(description="full, or redacted (personal data and secrets masked)")
    content: Any = Field(description="JSON items as JSON; text as a string; null if binary")
    withheld: str | None = Field(
        default=None, description="Why the content is not shown, when it is not."
    )


class RecordOut(BaseModel):
    """One ledger record: an act on evidence."""

    seq: int
    action: str
    incident_id: int | None
    item_id: int | None
    actor: str
    at: datetime
    details: dict[str, Any]
    record_hash: str

    @classmethod
    def of(cls, row: Any) -> RecordOut:
        """The record of a ledger row, details read from its body."""
        body = json.loads(row.body)
        return cls(
            seq=row.seq,
            action=row.action,
            incident_id=row.incident_id,
            item_id=row.item_id,
            actor=row.actor,
            at=row.at,
            details=body.get("details") or {},
            record_hash=row.record_hash,
        )


class CollectIn(In):
    signals: Ids = Field(default_factory=list, description="Signals whose interactions to keep.")
    interactions: Ids = Field(default_factory=list, description="Interactions to keep.")

    @model_validator(mode="after")
    def _something(self) -> CollectIn:
        if not self.signals and not self.interactions:
            raise ValueError("name at least one signal or interaction to collect")
        return self


class SnapshotIn(In):
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class ReproductionIn(In):
    input: Annotated[str, StringConstraints(max_length=200_000)] = Field(
        description="What was sent to the system."
    )
    environment: dict[str, Any] = Field(default_factory=dict, description="Where it ran.")
    model_version: Annotated[str, StringConstraints(max_length=200)] = ""
    result: Annotated[str, StringConstraints(max_length=200_000)] = Field(
        description="What came back."
    )
    differed: bool = Field(description="Whether the result differed from what was seen.")
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class GrantIn(In):
    to: Name = Field(description="Who gets the full view (a token's name).")
    reason: Reason


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    incident_id: int
    principal: str
    reason: str
    granted_by: str
    granted_at: datetime


class HoldIn(In):
    reason: Reason


class HoldOut(BaseModel):
    incident_id: int
    held: bool
    reason: str | None = None
    placed_by: str | None = None
    placed_at: datetime | None = None


class LedgerReportOut(BaseModel):
    ok: bool
    records: int
    checkpoints: int
    witnessed: int = Field(
        default=0, description="Checkpoint lines read from the files outside the database."
    )
    head_seq: int
    head_hash: str
    problems: list[str]
    notes: list[str] = []


class HuntMode(StrEnum):
    pattern = "pattern"
    text = "text"
    canary = "canary"


class HuntIn(In):
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="A regular expression (Python syntax)."
    )
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="A literal string."
    )
    canary: int | None = Field(default=None, ge=1, le=2**62, description="A canary token's id.")
    system: Annotated[str, StringConstraints(max_length=100)] | None = None
    since: datetime | None = Field(default=None, description="Only interactions from then on.")

    @model_validator(mode="after")
    def _one_query(self) -> HuntIn:
        given = [m for m in ("pattern", "text", "canary") if getattr(self, m) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of pattern, text, canary")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since needs a timezone, e.g. 2026-11-01T00:00:00Z")
        return self

    @property
    def mode(self) -> HuntMode:
        if self.pattern is not None:
            return HuntMode.pattern
        return HuntMode.text if self.text is not None else HuntMode.canary

    @property
    def query(self) -> str:
        return self.pattern or self.text or str(self.canary)


class HuntOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    mode: str
    query: str
    system_id: str | None
    since: datetime | None
    state: str = Field(description="queued, running, done or failed")
    scanned: int
    total: int
    match_count: int
    method: str
    summary: dict[str, Any] = Field(
        description="conversations, users and tool side effects among the matches"
    )
    error: str | None
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class HuntMatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    interaction_id: int
    field: str
    excerpt: str
    trace_id: str
    conversation_id: str | None
    user_id: str | None
    system_id: str | None
    tool_name: str | None
    at: datetime


class AttachIn(In):
    incident: int = Field(ge=1, le=2**62)


class AttachOut(BaseModel):
    incident_id: int
    items: list[int]
    conversations: list[str]
    users: list[str]
