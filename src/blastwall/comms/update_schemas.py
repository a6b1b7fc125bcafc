"""API shapes of status updates, their previews, "no change" updates and cadence snoozes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from blastwall.comms.models.updates import ComponentStatus, Impact, Phase, UpdateState
from blastwall.incidents.schemas import In

__all__ = [
    "SECTIONS",
    "DraftIn",
    "NoChangeIn",
    "PreviewOut",
    "ProblemOut",
    "RenderingOut",
    "SnoozeIn",
    "SnoozeOut",
    "UpdateEdit",
    "UpdateOut",
]

#: The sections of an update, in the order they are read, with their headings.
SECTIONS: dict[str, str] = {
    "what_happened": "What happened",
    "what_we_are_testing": "What we are testing",
    "what_we_are_doing": "What we are doing",
    "what_we_dont_know": "What we don't know yet",
}
AudienceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Item = Annotated[str, StringConstraints(max_length=4000)]
Items = Annotated[list[Item], Field(max_length=200)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give the time with its timezone, e.g. 2026-12-08T10:30:00Z")
    return value


class DraftIn(In):
    audience: AudienceName


class UpdateEdit(In):
    """The parts to change; a section given replaces the whole section (one item a line)."""

    title: Title | None = None
    what_happened: Items | None = None
    what_we_are_testing: Items | None = None
    what_we_are_doing: Items | None = None
    what_we_dont_know: Items | None = None
    next_update_at: datetime | None = Field(
        default=None, description="When the next update comes; null clears it."
    )
    phase: Phase | None = None
    impact: Impact | None = None
    component_status: ComponentStatus | None = None

    _timezone = field_validator("next_update_at")(_aware)


class NoChangeIn(In):
    audience: AudienceName
    next_update_at: datetime | None = Field(
        default=None, description="Default: now plus the audience's cadence for the severity."
    )

    _timezone = field_validator("next_update_at")(_aware)


class SnoozeIn(In):
    audience: AudienceName
    until: datetime
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]

    _timezone = field_validator("until")(_aware)


class SnoozeOut(BaseModel):
    incident_id: int
    audience: str
    until: datetime
    reason: str
    snoozed_by: str
    snoozed_at: datetime


class RenderingOut(BaseModel):
    """An update as one audience reads it: each section's text (an empty one says "None")
    and the whole body."""

    audience: str
    title: str
    sections: dict[str, str]
    body: str
    redacted: list[str] = Field(
        default_factory=list, description="The redaction classes removed for this audience."
    )


class ProblemOut(BaseModel):
    field: str
    message: str


class UpdateOut(BaseModel):
    id: int
    incident_id: int
    audience: str
    state: UpdateState
    title: str
    what_happened: list[str]
    what_we_are_testing: list[str]
    what_we_are_doing: list[str]
    what_we_dont_know: list[str]
    next_update_at: datetime | None
    phase: Phase
    impact: Impact
    component_status: ComponentStatus
    author: str
    submitted_by: str | None
    approver: str | None
    published_by: str | None
    published_at: datetime | None
    no_change_of: int | None
    rendered: dict[str, Any] = Field(
        description="Once published: the audience's rendering and the responders', as sent."
    )
    created_at: datetime
    updated_at: datetime


class PreviewOut(BaseModel):
    """The audience's rendering beside the responders', and what would block publishing."""

    update_id: int
    audience: RenderingOut
    responders: RenderingOut
    problems: list[ProblemOut]
