"""API shapes of incidents, roles, timeline entries and tasks."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from blastwall.incidents.lifecycle import Status

Title = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(max_length=20000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
SystemId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]


class Archetype(StrEnum):
    prompt_injection = "prompt_injection"
    data_exfiltration = "data_exfiltration"
    model_manipulation = "model_manipulation"
    misinformation_cascade = "misinformation_cascade"
    toxicity_abuse = "toxicity_abuse"
    agentic_misalignment = "agentic_misalignment"
    vendor_failure = "vendor_failure"
    performance_degradation = "performance_degradation"
    supply_chain = "supply_chain"
    unauthorised_use = "unauthorised_use"


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class Visibility(StrEnum):
    open = "open"
    restricted = "restricted"


class IncidentRole(StrEnum):
    incident_commander = "incident_commander"
    deputy_commander = "deputy_commander"
    scribe = "scribe"
    technical_lead = "technical_lead"
    communications_lead = "communications_lead"
    legal_liaison = "legal_liaison"


class EntryKind(StrEnum):
    """Kinds a person may add; the system adds its own (created, status_changed, ...)."""

    note = "note"
    fact = "fact"
    hypothesis = "hypothesis"
    decision = "decision"
    action = "action"


class Verdict(StrEnum):
    confirmed = "confirmed"
    refuted = "refuted"


class TaskKind(StrEnum):
    task = "task"
    action_item = "action_item"


class TaskState(StrEnum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


def _refuse_nul(value: Any) -> Any:
    """PostgreSQL stores no NUL character in text: one in any text of a body (a list's or a
    mapping's included) is refused with 422 on every database alike."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("NUL characters cannot be stored; remove them")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)
    return value


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    _no_nul = field_validator("*")(_refuse_nul)


class IncidentCreate(In):
    title: Title
    summary: LongText = ""
    archetype: Archetype
    severity: Severity
    severity_reason: LongText = ""
    systems: list[SystemId] = Field(default_factory=list, max_length=200)
    visibility: Visibility = Visibility.open
    detected_at: datetime | None = Field(
        default=None, description="When the problem was first detected; default: now."
    )
    participants: list[Name] = Field(default_factory=list, max_length=200)
    signals: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Signals behind the incident: the interactions they point to are "
        "preserved as evidence when it opens.",
    )


class IncidentUpdate(In):
    title: Title | None = None
    summary: LongText | None = None
    archetype: Archetype | None = None
    severity: Severity | None = None
    severity_reason: LongText | None = None
    systems: list[SystemId] | None = Field(default=None, max_length=200)
    visibility: Visibility | None = None
    add_participants: list[Name] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _severity_needs_reason(self) -> IncidentUpdate:
        if self.severity is not None and not self.severity_reason:
            raise ValueError("changing severity needs a severity_reason saying why")
        return self


class StatusChange(In):
    status: Status
    reason: LongText = ""
    merged_into: int | None = Field(default=None, ge=1, le=2**62)


class Milestones(BaseModel):
    """When the incident reached each point of its response (see docs/incidents.md)."""

    detected: datetime
    acknowledged: datetime | None
    contained: datetime | None = Field(
        description="Since when the harm can spread no further: the time the first control "
        "still in force was applied, or when people set the status to contained."
    )
    mitigated: datetime | None = Field(
        default=None,
        description="When the harm was stopped and recovery began: the status reached "
        "recovering (or resolved, for an incident that skipped recovering).",
    )
    resolved: datetime | None
    closed: datetime | None


class Durations(BaseModel):
    """Seconds from detection to each milestone; null until it is reached."""

    to_acknowledge: float | None
    to_contain: float | None
    to_mitigate: float | None
    to_resolve: float | None


class IncidentOut(BaseModel):
    id: int
    title: str
    summary: str
    archetype: Archetype
    severity: Severity
    severity_reason: str
    status: Status
    visibility: Visibility
    systems: list[str]
    merged_into: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    milestones: Milestones
    durations: Durations


class RoleAssign(In):
    role: IncidentRole
    assignee: Name


class RoleOut(BaseModel):
    role: IncidentRole
    assignee: str
    assigned_by: str
    assigned_at: datetime


class EntryCreate(In):
    kind: EntryKind
    text: Annotated[str, StringConstraints(min_length=1, max_length=20000)]


class VerdictIn(In):
    verdict: Verdict
    text: LongText = ""


class EntryOut(BaseModel):
    id: int
    kind: str
    text: str
    data: dict[str, Any]
    ref_id: int | None
    actor: str
    at: datetime
    hypothesis_state: str | None = Field(
        default=None, description="For hypotheses: open, confirmed or refuted."
    )


class TaskCreate(In):
    title: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    kind: TaskKind = TaskKind.task
    owner: Name | None = None
    due: date | None = None


class TaskUpdate(In):
    title: Title | None = None
    owner: Name | None = Field(default=None, description="null clears the owner.")
    due: date | None = Field(default=None, description="null clears the due date.")
    state: TaskState | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> TaskUpdate:
        for field in ("title", "state"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null; leave it out to keep it")
        return self


class TaskOut(BaseModel):
    id: int
    incident_id: int
    kind: TaskKind
    title: str
    owner: str | None
    due: date | None
    state: TaskState
    created_by: str
    created_at: datetime
    updated_at: datetime
