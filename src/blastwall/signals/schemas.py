"""API shapes of signals, reports and the Alertmanager ingest answer."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from blastwall.errors import InvalidInput, Problem
from blastwall.incidents.schemas import Archetype

MAX_ATTRIBUTES_BYTES = 64 * 1024
SUMMARY_LENGTH = 4000


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the timestamp is out of range") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"attributes cannot be stored as JSON: {exc}") from None
    if b"\\u0000" in encoded and _has_nul(value):
        raise ValueError("NUL characters cannot be stored; remove them")
    size = len(encoded)
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(
            f"attributes are {size} bytes as JSON, more than the {MAX_ATTRIBUTES_BYTES} "
            "allowed; keep the evidence itself in your own store and link to it"
        )
    return value


def _plain_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters cannot be stored; remove them")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text has unpaired surrogates; send valid UTF-8") from None
    return value


PlainText = AfterValidator(_plain_text)


def refuse_nul(where: str, values: dict[str, str | None]) -> None:
    """Refuse filter values (query parameters) holding a NUL character, as PostgreSQL does
    (it cannot compare text holding one), so that SQLite answers the same 422."""
    bad = [name for name, value in values.items() if value and "\x00" in value]
    if bad:
        raise InvalidInput(
            f"{', '.join(bad)} holds a NUL character; remove it.",
            problems=[
                Problem(f"{where}.{name}", "NUL characters cannot be stored") for name in bad
            ],
        )


def _trace_id(value: str) -> str:
    value = value.lower()
    if value == "0" * 32:
        raise ValueError("the all-zero trace id is invalid (W3C Trace Context)")
    return value


Source = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, strip_whitespace=True),
    PlainText,
    Field(description="What sent the signal: a DLP tool, a guardrail, an evaluation job..."),
]
Kind = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    PlainText,
    Field(description="What the sender found, in its own words, e.g. `pii_in_output`."),
]
SystemRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    PlainText,
    Field(
        description="The AI system's id in the inventory. A name that is not in the inventory "
        "is kept as an unregistered system (possible shadow AI)."
    ),
]
Summary = Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_LENGTH), PlainText]
Attributes = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_json),
    Field(description=f"Free-form details, at most {MAX_ATTRIBUTES_BYTES} bytes as JSON."),
]
TraceId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-fA-F]{32}$"),
    AfterValidator(_trace_id),
    Field(description="W3C trace id (32 hex digits) of the trace the signal is about."),
]
ConversationId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    PlainText,
    Field(description="The conversation (session, thread) the signal is about."),
]

Where = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, strip_whitespace=True),
    PlainText,
    Field(description="Where you saw it, e.g. 'support chat widget'."),
]
Contact = Annotated[
    str,
    StringConstraints(min_length=1, max_length=300, strip_whitespace=True),
    PlainText,
    Field(description="How responders can reach you, if not through your account."),
]


class SignalSeverity(StrEnum):
    info = "info"
    warning = "warning"
    high = "high"
    critical = "critical"


class SignalStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignalCreate(In):
    source: Source
    system: SystemRef | None = None
    kind: Kind
    archetype: Archetype | None = Field(
        default=None, description="The kind of AI incident this points to, if the sender knows."
    )
    severity: SignalSeverity
    summary: Summary
    attributes: Attributes = Field(default_factory=dict)
    trace_id: TraceId | None = None
    conversation_id: ConversationId | None = None
    starts_at: UtcDatetime | None = Field(
        default=None, description="When the condition began; default: when it is received."
    )


class ReportCreate(In):
    what: Annotated[
        str,
        StringConstraints(min_length=1, max_length=20000, strip_whitespace=True),
        PlainText,
        Field(description="What you saw and what is wrong with it, in your own words."),
    ]
    where: Where | None = None
    system: SystemRef | None = None
    conversation_id: ConversationId | None = None
    contact: Contact | None = None


class SignalOut(BaseModel):
    id: int
    source: str
    kind: str
    system_id: str | None = Field(description="The inventory system, when the name matched one.")
    system_ref: str | None = Field(description="The system as the sender named it.")
    unregistered: bool = Field(
        description="True when the sender named a system that is not in the inventory."
    )
    archetype: Archetype | None
    severity: SignalSeverity
    status: SignalStatus
    summary: str
    attributes: dict[str, Any]
    trace_id: str | None
    conversation_id: str | None
    fingerprint: str | None
    reference: str | None
    detector: str | None = Field(description="The detector that raised it, for findings.")
    detector_version: str | None
    confidence: float | None = Field(description="The detector's confidence, 0 to 1.")
    excerpt: str | None = Field(
        description="A short piece of what matched, with personal data masked."
    )
    interaction_ids: list[int] | None = Field(
        description="The stored interactions the finding rests on."
    )
    owasp: list[str] | None = Field(
        description="OWASP Top 10 for LLM Applications codes with edition, e.g. LLM01:2025."
    )
    atlas: list[str] | None = Field(description="MITRE ATLAS technique ids.")
    starts_at: datetime | None
    ends_at: datetime | None
    group_id: int | None = Field(
        description="The signal group: signals with the same fingerprint, counted."
    )
    candidate_id: int | None = Field(
        description="The incident candidate it joined; none when held back, or too weak to "
        "start one."
    )
    held_by: str | None = Field(
        description="What held it back: `maintenance:<id>`, `snooze:<id>` or `inhibition:<name>`."
    )
    linked_by: str | None = Field(
        default=None,
        description="What joined it to the candidate of an earlier signal: `trace:<id>` or "
        "`conversation:<id>`.",
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


class ReportOut(BaseModel):
    reference: str
    signal_id: int
    message: str


class IngestResult(BaseModel):
    created: int = Field(description="Signals created (new alerts, and alerts firing again).")
    updated: int = Field(description="Signals changed: resolved, or a firing alert's details.")
    unchanged: int = Field(description="Alerts already recorded exactly as sent (repeats).")
    signals: list[int] = Field(description="The signal of each alert, in the payload's order.")
