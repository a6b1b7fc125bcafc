"""What a detector is, what it reads and what it finds.

A detector reads one interaction at a time (an `Item`) and answers its findings. It is built
once per AI system from that system's configuration (its `Config`, read from the system's
`detection.<detector id>` entry in the inventory) and the system's inventory entry, so what
depends on the system (approved tools, the registered system prompt, data sensitivity) is
worked out once, not per interaction. A stateful detector (rates, windows, baselines) keeps
its state on the instance; the engine keeps one instance per system for as long as the
system's inventory entry does not change.

Detectors come from plugins: see `blastwall.hookspecs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from blastwall.inventory.schemas import SystemSpec

__all__ = [
    "EXCERPT_CHARS",
    "Detector",
    "DetectorConfig",
    "Finding",
    "Item",
    "SystemContext",
    "ToolCall",
    "excerpt",
]

EXCERPT_CHARS = 200


@dataclass(slots=True)
class ToolCall:
    """A tool call a model asked for, or a tool span's execution."""

    name: str | None
    arguments: Any = None  # a dict when the arguments were JSON, else the text as sent
    call_id: str | None = None


@dataclass(slots=True)
class Item:
    """One interaction as detectors see it: its texts by channel, its tool calls and what
    is known about it. Only the new content of a turn is here: the latest user messages,
    not the whole conversation history each request repeats."""

    inputs: list[str] = field(default_factory=list)
    """What the user sent (direct channel)."""
    outputs: list[str] = field(default_factory=list)
    """What the model answered."""
    context: list[str] = field(default_factory=list)
    """Retrieved documents and tool results fed to the model (indirect channel)."""
    instructions: list[str] = field(default_factory=list)
    """The system instructions (system prompt) of the call."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    system_id: str | None = None
    conversation_id: str | None = None
    user_id: str | None = None
    agent: str | None = None
    operation: str = "chat"
    model: str | None = None
    time: float | None = None
    """Start, in seconds since the epoch; None when unknown (plain text in `blastwall scan`)."""
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: list[str] | None = None
    error_type: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    """The span's other attributes (guardrail verdicts and the like)."""
    trace_id: str | None = None
    span_id: str | None = None
    ref: int = 0
    """The item's position in its batch (ingest) or its line number (scan)."""
    hits: list[str] = field(default_factory=list)
    """Ids of the stateless detectors that found something in this item; the engine fills
    it in before the stateful detectors (drift counts hit rates) read the item."""


@dataclass(slots=True)
class Finding:
    """One thing a detector found. The engine turns it into a signal."""

    kind: str
    """What was found, e.g. `prompt_injection`, `pii_in_output`."""
    archetype: str | None
    """One of `blastwall.incidents.schemas.Archetype`; None when it cannot be told."""
    severity: str
    """A hint: info, warning, high or critical."""
    confidence: float
    summary: str
    excerpt: str | None = None
    """A short piece of the text that matched. The engine masks personal data in it."""
    matched: str | None = None
    """The value that matched, compared with the detector's allowlist; never stored."""
    owasp: tuple[str, ...] = ()
    """OWASP Top 10 for LLM Applications codes with their edition, e.g. `LLM01:2025`."""
    atlas: tuple[str, ...] = ()
    """MITRE ATLAS technique ids, e.g. `AML.T0051.001`."""
    attributes: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    """What makes two findings of this detector on this system the same (for the
    fingerprint), e.g. the tool name; None: the kind alone."""
    rests_on: list[Item] | None = None
    """The interactions the finding rests on; None: just the item that was read."""


@dataclass(frozen=True, slots=True)
class SystemContext:
    """What a detector may know about the system it watches."""

    system_id: str | None = None
    spec: SystemSpec | None = None
    """The inventory entry; None for a system the inventory does not know."""
    canaries: Mapping[str, str] = field(default_factory=dict)
    """SHA-256 (hex) of every live canary token, to the system it was issued for."""


class DetectorConfig(BaseModel):
    """Settings every detector has. A detector's own `Config` adds its thresholds."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    allowlist: list[str] = Field(
        default_factory=list,
        description="Findings whose matched value contains one of these (case-insensitive) "
        "are dropped.",
    )


class Detector:
    """Base class of detectors. Subclasses set the class attributes and `detect`."""

    id: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    stateful: ClassVar[bool] = False
    Config: ClassVar[type[DetectorConfig]] = DetectorConfig

    def __init__(self, config: DetectorConfig, context: SystemContext) -> None:
        self.config = config
        self.context = context

    def detect(self, item: Item) -> list[Finding]:
        raise NotImplementedError


def excerpt(text: str, start: int, end: int, width: int = EXCERPT_CHARS) -> str:
    """The text around [start, end), at most `width` characters, on one line, with "…"
    where it was cut."""
    span = end - start
    if span >= width:
        start, end = start, start + width
    else:
        pad = (width - span) // 2
        start, end = max(0, start - pad), min(len(text), end + pad)
    piece = " ".join(text[start:end].split())
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")
