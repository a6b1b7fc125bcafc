"""API shapes of incident candidates, signal groups, noise rules and triage decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from blastwall.incidents.schemas import Archetype, Severity, Title, Visibility
from blastwall.signals.schemas import PlainText, UtcDatetime

Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True), PlainText
]
MatchValue = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), PlainText
]


class CandidateStatus(StrEnum):
    pending = "pending"  # waits for triage
    opened = "opened"  # an incident opened at once: severity at or above the threshold
    accepted = "accepted"  # a person turned it into an incident
    declined = "declined"
    merged = "merged"  # a person merged it into an existing incident


class Basis(StrEnum):
    system = "system"  # one system and archetype
    component = "component"  # several systems pointing at a component they share
    report = "report"  # people's reports


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeverityFactor(BaseModel):
    factor: str
    points: int
    why: str


class Affected(BaseModel):
    conversations: int = Field(description="Distinct conversations among the signals.")
    users: int = Field(description="Distinct users named by the signals.")
    reported: int = Field(
        description="Conversations or users counted by the senders themselves (the larger, "
        "from a signal's `conversations` or `users` attribute)."
    )


class Evidence(BaseModel):
    """What the candidate's signals showed, as the severity policy's evidence factors weigh
    it (the factors' points are in `explanation`)."""

    reports: int = Field(default=0, description="Reports from people (users or staff).")
    corroborated: int = Field(
        default=0,
        description="Reported conversations in which a detector found something too.",
    )
    succeeded: list[str] = Field(
        default_factory=list,
        description="Signs that it got through (the first few): a tool call that went "
        "through, an injection followed by a report or another kind of signal, data that left.",
    )
    attempts: int = Field(default=0, description="Signals other than people's reports.")
    blocked: int = Field(default=0, description="Of those, attempts that were blocked.")
    confidence: float | None = Field(default=None, description="Highest detector confidence.")
    leaks: dict[str, int] = Field(
        default_factory=dict,
        description="What leaked: per type (api_key, email...) or leaking kind, the most "
        "distinct values one signal carried.",
    )
    baseline_per_hour: float = Field(
        default=0.0,
        description="Its system's usual rate of such signals when it started, per hour.",
    )

    @classmethod
    def of(cls, state: dict[str, Any] | None) -> Evidence:
        state = state or {}
        return cls(
            reports=int(state.get("reports", 0)),
            corroborated=len(state.get("corroborated") or []),
            succeeded=list(state.get("succeeded") or []),
            attempts=int(state.get("attempts", 0)),
            blocked=int(state.get("blocked", 0)),
            confidence=state.get("confidence"),
            leaks=dict(state.get("leaks") or {}),
            baseline_per_hour=float(state.get("baseline_per_hour") or 0.0),
        )


class CandidateOut(BaseModel):
    id: int
    title: str
    status: CandidateStatus
    basis: Basis
    key: str = Field(description="What its signals have in common, e.g. system:x:archetype.")
    component: str | None = Field(description="The shared component, e.g. vendor:openai.")
    archetype: Archetype | None
    systems: list[str]
    severity: Severity
    severity_points: int
    severity_explanation: str = Field(description="The policy's reasoning, in one line.")
    explanation: list[SeverityFactor] = Field(description="The points of each factor.")
    incident_id: int | None
    signal_count: int
    group_count: int
    top_signal_severity: str
    affected: Affected
    first_signal_at: datetime
    last_signal_at: datetime
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    reasons: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Where its archetype comes from (`archetype`: the strongest signal), "
        "each signal joined to it by a shared trace or conversation (`linked`) and its "
        "escalation (`escalated`), each with a `why`.",
    )
    evidence: Evidence = Field(default_factory=Evidence)
    escalated_at: datetime | None = Field(
        default=None,
        description="When it was escalated to its triage owner, still pending and growing "
        "below the threshold (a record and a log line: no notification is sent).",
    )
    escalated_to: str | None = Field(default=None, description="Its triage owner.")


class GroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    fingerprint: str
    source: str
    kind: str
    system: str | None
    archetype: str | None
    severity: str
    summary: str
    count: int = Field(description="Signals with this fingerprint.")
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    previous_id: int | None = Field(description="The group this one is a recurrence of.")
    candidate_id: int | None
    held_by: str | None = Field(description="The rule that held its last signal back.")
    evidence_count: int = Field(
        default=0, description="Interactions its repeats added to the incident's evidence."
    )


class Accept(In):
    title: Title | None = Field(default=None, description="Default: the candidate's title.")
    archetype: Archetype | None = Field(
        default=None, description="Needed when the candidate has none."
    )
    severity: Severity | None = Field(default=None, description="Default: the policy's.")
    visibility: Visibility = Visibility.open


class Decline(In):
    reason: Reason
    snooze: bool = Field(
        default=True,
        description="Snooze the candidate's signals for the policy's `decline_snooze` time.",
    )


class Merge(In):
    incident_id: int = Field(ge=1, le=2**62, description="The incident to merge into.")


class Match(In):
    source: MatchValue | None = None
    kind: MatchValue | None = None
    detector: MatchValue | None = None
    archetype: Archetype | None = None
    system: MatchValue | None = None
    fingerprint: MatchValue | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError(
                "name at least one of source, kind, detector, archetype, system, fingerprint"
            )
        return self


class SnoozeCreate(In):
    match: Match = Field(description="Signals matching every field given are held back.")
    reason: Reason
    until: UtcDatetime = Field(description="When the snooze expires.")


class MaintenanceCreate(In):
    system: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    reason: Reason

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must come after starts_at")
        return self


class NoiseRuleKind(StrEnum):
    snooze = "snooze"
    maintenance = "maintenance"


class NoiseRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: NoiseRuleKind
    system_id: str | None
    match: dict[str, str]
    reason: str
    starts_at: datetime
    ends_at: datetime
    candidate_id: int | None = Field(description="The declined candidate that made it.")
    created_by: str
    created_at: datetime
    ended_by: str | None
    ended_at: datetime | None
    active: bool = Field(description="In force now.")


class InhibitionOut(BaseModel):
    name: str
    description: str
    when: Archetype
    holds: list[Archetype]
    via: list[str]
