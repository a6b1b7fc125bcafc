"""API shapes of obligations: facts, anchors, decisions, submissions, and an obligation with
its clocks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "AnchorIn",
    "AnchorOut",
    "ClockOut",
    "DeadlineOut",
    "Decision",
    "DecisionIn",
    "FactIn",
    "FactOut",
    "FactState",
    "FactsIn",
    "ObligationOut",
    "ObligationStatus",
    "ProfileOut",
    "SubmissionOut",
]

FactName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,99}$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=5000, strip_whitespace=True)]


class ObligationStatus(StrEnum):
    candidate = "candidate"
    confirmed = "confirmed"
    not_applicable = "not_applicable"


class Decision(StrEnum):
    confirmed = "confirmed"
    not_applicable = "not_applicable"


class FactState(StrEnum):
    confirmed = "confirmed"
    suspected = "suspected"


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactIn(In):
    name: FactName
    value: bool | int | str | list[str] = True
    state: FactState = FactState.confirmed


class FactsIn(In):
    facts: list[FactIn] = Field(min_length=1, max_length=100)
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class AnchorIn(In):
    at: AwareDatetime
    reason: Reason


class DecisionIn(In):
    decision: Decision
    reason: Reason


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FactOut(Out):
    name: str
    value: Any
    state: FactState
    set_by: str
    set_at: datetime


class AnchorOut(Out):
    kind: str
    at: datetime
    set_by: str
    set_at: datetime
    reason: str
    default: bool = False


class DeadlineOut(BaseModel):
    at: datetime
    local: str
    basis: str


class ClockOut(BaseModel):
    """One report's clock: the earliest deadline, the others beside it; `due` None where
    a moment it runs from is not known yet or the text sets no period."""

    name: str
    submission: str
    article: str
    note: str
    due: DeadlineOut | None
    started_at: datetime | None
    alternatives: list[DeadlineOut]
    waiting_for: list[str]
    submitted_at: datetime | None
    overdue: bool


class SubmissionOut(Out):
    id: int
    kind: str
    submitted_at: datetime
    reference: str
    evidence_item_id: int | None
    note: str
    recorded_by: str
    recorded_at: datetime


class ObligationOut(BaseModel):
    id: int
    incident_id: int
    rule_id: str
    regime: str
    title: str
    article: str
    link: str
    pack_version: str
    status: ObligationStatus
    matches: bool
    why: list[Any]
    rule_out: list[str]
    verify: list[str]
    preliminary_allowed: bool
    clocks: list[ClockOut]
    submissions: list[SubmissionOut]
    decided_by: str | None
    decided_at: datetime | None
    reason: str


class ProfileOut(BaseModel):
    id: int
    organisation: str
    source: str
    applied_by: str
    applied_at: datetime
    spec: dict[str, Any]
