"""API shapes of containment: actions, their parameters per control, the control state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from blastwall.inventory.schemas import Control

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Version = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class ActionState(StrEnum):
    pending_approval = "pending_approval"
    active = "active"
    rejected = "rejected"
    reverted = "reverted"
    expired = "expired"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuspendParams(Strict):
    agent: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="One agent of the system; default: the whole system."
    )


ToolName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    Field(
        description="A tool the inventory declares, in any spelling (`issue_refund` is "
        "`issue-refund`); stored as the inventory names it."
    ),
]


class ToolParams(Strict):
    tool: ToolName


class ApprovalParams(Strict):
    tool: ToolName | None = None
    all: bool = Field(default=False, description="Every tool call needs a person's approval.")

    @model_validator(mode="after")
    def _one(self) -> ApprovalParams:
        if (self.tool is None) == (not self.all):
            raise ValueError("give either `tool` or `all: true`, not both and not neither")
        return self


ContentHash = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class PinPromptParams(Strict):
    version: Version | None = Field(
        default=None, description="A version the prompt has had; with `rollback`, left out."
    )
    prompt: Slug | None = Field(default=None, description="Prompt id; default: the only one.")
    content_hash: ContentHash | None = Field(
        default=None, description="Filled in by Blastwall from the known versions."
    )


class PinModelParams(Strict):
    version: Version | None = Field(
        default=None, description="A version the model has had; with `rollback`, left out."
    )
    model: Slug | None = Field(default=None, description="Model id; default: the only one.")


class BlockInputParams(Strict):
    patterns: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=500)]],
        Field(min_length=1, max_length=50),
    ]

    @model_validator(mode="after")
    def _compiles(self) -> BlockInputParams:
        for index, pattern in enumerate(self.patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns[{index}] is not a regular expression: {exc}") from None
        return self


class NoParams(Strict):
    pass


class RateLimitParams(Strict):
    per_minute: int = Field(ge=1, le=1_000_000, description="Model calls allowed per minute.")


PARAMS: dict[Control, type[Strict]] = {
    Control.suspend: SuspendParams,
    Control.revoke_tool: ToolParams,
    Control.require_approval: ApprovalParams,
    Control.pin_prompt_version: PinPromptParams,
    Control.pin_model_version: PinModelParams,
    Control.block_input: BlockInputParams,
    Control.quarantine_output: NoParams,
    Control.rate_limit: RateLimitParams,
    Control.manual_fallback: NoParams,
}


class Acknowledgement(StrEnum):
    """Why a change to a system under an AI Act serious-incident obligation may go ahead
    before the evaluation of its causes (Art. 73(6))."""

    authority_informed = "authority_informed"
    needed_to_stop_harm = "needed_to_stop_harm"


class ActionIn(Strict):
    control: Control
    params: dict[str, Any] = Field(default_factory=dict)
    reason: Reason
    expires_at: datetime | None = Field(
        default=None, description="When the control lapses by itself (timezone required)."
    )
    system: Slug | None = Field(
        default=None, description="The AI system; default: the incident's only system."
    )
    rollback: bool = Field(
        default=False,
        description="pin_prompt_version / pin_model_version: pin the version that was current "
        "before the incident's first signal, found from the change log.",
    )
    grace_seconds: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="How long the telemetry the control should stop may go on before it is a "
        "containment breach; default: BLASTWALL_CONTAINMENT_GRACE_SECONDS.",
    )
    acknowledgement: Acknowledgement | None = Field(
        default=None,
        description="Needed for a control that alters the system (pinning a prompt or model "
        "version, revoking a tool) while the incident has an AI Act serious-incident "
        "obligation: the authority has been informed, or the change is needed to stop harm "
        "(AI Act Art. 73(6)). It goes on the timeline.",
    )


class ActionDecision(Strict):
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class RevertIn(Strict):
    reason: Reason


class QuarantineIn(Strict):
    reason: Reason
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    tool: Annotated[str, StringConstraints(max_length=200)] | None = None
    pattern: Annotated[str, StringConstraints(max_length=500)] | None = None
    all: bool = False
    limit: int = Field(default=10_000, ge=1, le=100_000)


class QuarantineOut(BaseModel):
    marked: list[int] = Field(description="Interactions newly marked quarantined.")
    affected: int = Field(description="Interactions found by the hunt.")


class ToolApprovalIn(Strict):
    system: Slug
    tool: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    arguments: Any = None
    agent: Annotated[str, StringConstraints(max_length=200)] | None = None
    timeout: float = Field(
        default=60.0, ge=1, le=86_400, description="Seconds the guard waits for a decision."
    )


class ToolDecisionIn(Strict):
    approve: bool
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class ToolApprovalOut(BaseModel):
    id: int
    system_id: str
    action_id: int
    tool: str
    arguments: Any
    agent: str | None
    state: str = Field(description="pending, approved, denied or expired.")
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


class ActionOut(BaseModel):
    id: int
    incident_id: int
    system_id: str
    control: Control
    params: dict[str, Any]
    reason: str
    state: ActionState
    requested_by: str
    requested_at: datetime
    approved_by: str | None
    applied_at: datetime | None
    expires_at: datetime | None
    ended_by: str | None
    ended_at: datetime | None
    end_reason: str | None
    snapshot_id: int | None
    grace_seconds: int
    verification: str | None = Field(
        description="pending (within the grace period), verified (traffic seen and none the "
        "control should stop), breached, unverified (no traffic); None while not applied."
    )
    verified_at: datetime | None
    verification_note: str | None
    breach_signal_id: int | None
    message: str = ""


class ControlOut(BaseModel):
    """One control in force on a system: what, who set it, when, why, under which incident.
    The incident, people and reason are left out (`redacted`) for a reader who may not see
    the incident (and on the guards' stream, for restricted incidents)."""

    action_id: int
    control: Control
    params: dict[str, Any]
    incident_id: int | None
    set_by: str | None = Field(
        description="Who made it take effect: the approver, else the requester."
    )
    requested_by: str | None
    approved_by: str | None = Field(description="The second person, when it waited for one.")
    set_at: datetime
    reason: str | None
    expires_at: datetime | None
    redacted: bool = False


class ControlState(BaseModel):
    system_id: str
    revision: int
    fallback: str | None
    controls: list[ControlOut]
    tools: list[str] = Field(
        default_factory=list, description="The tools the inventory declares for the system."
    )
    agents: list[str] | None = Field(
        default=None,
        description="The agents the inventory declares for the system; None when it declares "
        "none (then any agent may run).",
    )


class UndeclaredIn(Strict):
    """A guard met a tool or agent the inventory does not declare for its system."""

    system: Slug
    kind: Literal["tool", "agent"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    agent: Annotated[str, StringConstraints(max_length=200)] | None = None


class UndeclaredOut(BaseModel):
    signal_id: int
    new: bool = Field(description="False when the name had been reported before.")


class SnapshotOut(BaseModel):
    id: int
    incident_id: int
    system_id: str
    action_id: int
    purpose: str
    taken_by: str
    taken_at: datetime
    sha256: str
    content: dict[str, Any]


@dataclass(frozen=True)
class ActionRecord:
    """What a containment connector is told about an action."""

    id: int
    incident_id: int
    system_id: str
    control: str
    params: dict[str, Any]
    reason: str
    expires_at: datetime | None


# --- the affected report (`blastwall affected`) ----------------------------------------------


class AffectedRow(BaseModel):
    interaction_id: int
    system_id: str | None
    at: datetime
    operation: str
    conversation_id: str | None
    user_id: str | None
    agent: str | None
    tool: str | None = Field(description="The tool's name as the span carried it.")
    tool_arguments: Any
    tool_result: Any
    error_type: str | None = Field(
        description="The span's error type: a call with one (e.g. ApprovalRequired, "
        "ToolDenied) did not happen."
    )
    side_effect: bool = Field(
        description="A call of a tool the inventory marks as writing (or declares no "
        "permissions for), that succeeded."
    )
    quarantined: bool


class ArgumentSum(BaseModel):
    """The sum of one numeric argument over a tool's side effects, per currency."""

    argument: str
    currency: str | None = Field(
        description="The value of the calls' currency argument; None when they have none."
    )
    total: int | float
    side_effects: int = Field(description="The side effects that carried the argument.")


class ToolTotal(BaseModel):
    """One tool of one system in the report: its calls, and how much its side effects did."""

    system_id: str | None
    tool: str = Field(
        description="The tool as the inventory names it; as the spans do when undeclared."
    )
    names: list[str] = Field(description="The names the spans carried (one identity).")
    access: Literal["read-only", "writing", "unknown"] = Field(
        description="From the inventory's permissions: read-only when every permission's "
        "action is a reading verb; unknown when it declares none or not the tool."
    )
    permissions: list[str]
    writes: bool = Field(description="Counted as writing: `writing`, and `unknown` too.")
    calls: int
    failed: int = Field(description="Calls whose span carries an error type: not done.")
    side_effects: int
    sums: list[ArgumentSum]


class Affected(BaseModel):
    incident_id: int
    systems: list[str]
    since: datetime
    until: datetime
    tool: str | None
    pattern: str | None
    scope: str = Field(
        description="Which conversations count: pattern (those matching it), signals (those "
        "the incident's signals and evidence name) or all (all the systems' traffic)."
    )
    totals: list[ToolTotal] = Field(
        description="Per tool, the most side effects first: calls, side effects and the sums "
        "of their numeric arguments per currency."
    )
    notes: list[str] = Field(
        description="What the reader should know: tools counted as writing for want of "
        "declared permissions, a report cut at its limit."
    )
    conversations: list[dict[str, Any]]
    users: list[dict[str, Any]]
    side_effects: list[AffectedRow] = Field(
        description="Successful calls of writing tools: what happened in the world."
    )
    calls: list[AffectedRow] = Field(
        description="Every tool call, read-only and failed ones included."
    )
    interactions: list[AffectedRow]
    truncated: bool
