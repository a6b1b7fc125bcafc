"""API shapes of containment: actions, their parameters per control, the control state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

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


class ToolParams(Strict):
    tool: Slug


class ApprovalParams(Strict):
    tool: Slug | None = None
    all: bool = Field(default=False, description="Every tool call needs a person's approval.")

    @model_validator(mode="after")
    def _one(self) -> ApprovalParams:
        if (self.tool is None) == (not self.all):
            raise ValueError("give either `tool` or `all: true`, not both and not neither")
        return self


class PinPromptParams(Strict):
    version: Version
    prompt: Slug | None = Field(default=None, description="Prompt id; default: the only one.")


class PinModelParams(Strict):
    version: Version
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
    message: str = ""


class ControlOut(BaseModel):
    """One control in force on a system: what, who set it, when, why, under which incident."""

    action_id: int
    control: Control
    params: dict[str, Any]
    incident_id: int
    set_by: str = Field(description="Who made it take effect: the approver, else the requester.")
    requested_by: str
    approved_by: str | None = Field(description="The second person, when it waited for one.")
    set_at: datetime
    reason: str
    expires_at: datetime | None


class ControlState(BaseModel):
    system_id: str
    revision: int
    fallback: str | None
    controls: list[ControlOut]


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
