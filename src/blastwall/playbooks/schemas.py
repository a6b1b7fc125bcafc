"""API shapes of playbooks and checklists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from blastwall.containment.schemas import ActionOut
from blastwall.playbooks.library import Playbook


class PlaybookSummary(BaseModel):
    id: str
    name: str
    version: int
    archetypes: list[str]
    steps: int
    custom: bool = Field(description="Read from BLASTWALL_PLAYBOOK_DIR rather than shipped.")

    @classmethod
    def of(cls, playbook: Playbook, *, custom: bool) -> PlaybookSummary:
        return cls(
            id=playbook.id,
            name=playbook.name,
            version=playbook.version,
            archetypes=[a.value for a in playbook.archetypes],
            steps=len(playbook.steps),
            custom=custom,
        )


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook: str | None = Field(
        default=None,
        max_length=80,
        description="The playbook's id; by default the one of the incident's archetype.",
    )


class StepCompletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str | None = Field(
        default=None, max_length=200, description="The option chosen, for a decision step."
    )
    note: str | None = Field(default=None, max_length=2000)
    skip: bool = Field(default=False, description="Skip the step instead of doing it.")

    @field_validator("outcome", "note")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class ChecklistStepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    playbook_id: str
    playbook_version: int
    step_id: str
    position: int = Field(description="The step's number in its checklist (1..n).")
    kind: str
    title: str
    detail: str
    control: str | None
    decided_by: str | None
    options: list[str]
    state: str
    outcome: str | None
    note: str | None
    completed_by: str | None
    completed_at: datetime | None
    action_id: int | None = Field(
        default=None,
        description="The containment action that carried the step out, or that it waits for.",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _lines(cls, value: object) -> object:
        if value is None:
            return []
        return value.split("\n") if isinstance(value, str) else value


class StepRun(BaseModel):
    """Run a containment step: its control, with these parameters, through containment."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description='The control\'s parameters, e.g. {"tool": "issue_refund"}.',
    )
    expires_at: AwareDatetime | None = None
    system: str | None = Field(
        default=None, max_length=100, description="The AI system; default: the incident's only one."
    )


class StepRunOut(BaseModel):
    step: ChecklistStepOut
    action: ActionOut
