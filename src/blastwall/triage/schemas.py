"""The triage pack's shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ChangeItem(BaseModel):
    id: int
    system_id: str
    kind: str
    summary: str
    field: str | None = None
    actor: str
    at: datetime


class Anomaly(BaseModel):
    source: str
    detector: str | None
    kind: str
    count: int = Field(description="Signals of this kind, repeats within a batch counted.")
    first_seen: datetime
    last_seen: datetime
    severity: str = Field(description="The highest severity among them.")
    example: str
    excerpt: str | None = None


class GraphNode(BaseModel):
    id: str
    kind: str = Field(description="system or the component kind (model, tool, vendor, ...)")
    label: str
    involved: bool = Field(description="An involved system, or a component of one.")


class GraphEdge(BaseModel):
    source: str
    target: str


class BlastRadius(BaseModel):
    systems: list[str] = Field(description="The incident's systems.")
    exposed: list[str] = Field(description="Other systems sharing a component with them.")
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class SimilarIncident(BaseModel):
    id: int
    title: str
    archetype: str
    severity: str
    status: str
    score: float
    shared_systems: list[str]
    mitigations: list[str] = Field(
        description="What was done: actions and decisions from its timeline, newest first."
    )


class ExternalIncident(BaseModel):
    """A similar incident from the known-incident library: not the organisation's own."""

    id: int
    source: str
    external_id: str
    title: str
    year: int | None
    url: str | None
    attribution: str
    score: float
    external: bool = True


class PlaybookStepOut(BaseModel):
    id: str
    kind: str
    title: str
    control: str | None = None
    supported: bool | None = Field(
        default=None,
        description="For a containment step: whether every involved system declares the "
        "control in the inventory.",
    )
    options: list[str] = Field(default_factory=list)
    decided_by: str | None = None


class PlaybookSuggestion(BaseModel):
    id: str
    name: str
    steps: list[PlaybookStepOut]


class Contact(BaseModel):
    system_id: str
    team: str
    contacts: list[dict[str, Any]]
    on_call: dict[str, Any] | None


class RoleSuggestion(BaseModel):
    role: str
    who: str
    why: str


class Classification(BaseModel):
    id: str
    framework: str
    name: str
    signals: int = Field(description="Signals naming it; 0 when it comes from the archetype.")


class TriagePack(BaseModel):
    incident_id: int
    title: str
    archetype: str
    severity: str
    status: str
    first_signal_at: datetime | None
    signals: int
    changes: list[ChangeItem]
    anomalies: list[Anomaly]
    blast_radius: BlastRadius
    similar: list[SimilarIncident]
    similar_external: list[ExternalIncident] = Field(
        description="Similar incidents from the known-incident library, with attribution."
    )
    playbook: PlaybookSuggestion | None
    owners: list[Contact]
    roles: list[RoleSuggestion]
    classification: list[Classification]
    assembled_ms: float
