"""What a scenario is made of: its events, the true incidents they belong to, the
maintenance windows and snoozes around them; and when a campaign's evidence would convince a
human (see the package's docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ROUND_SECONDS = 10 * 3600
MINUTE = 60.0
KINDS = (
    "injection",
    "vendor_outage",
    "runaway",
    "leak",
    "drift",
    "slow_campaign",
    "injection_tool_misuse",
    "flapping",
    "benign_warnings",
)
"""The scenario kinds of a round, in the order they start; `noise` and `stray` besides."""

Action = Literal["signal", "resolve", "settle"]


@dataclass(frozen=True)
class Event:
    """One thing that happens `at` seconds into the scenario."""

    at: float
    action: Action
    truth: str | None  # the true incident it belongs to; None: noise
    signal: dict[str, Any] = field(default_factory=dict)  # Signal fields; `system` by name
    alert: str | None = None  # the alert's identity, for `resolve` and the baseline
    kind: str = "noise"  # the scenario kind it comes from


@dataclass(frozen=True)
class Incident:
    name: str
    archetype: str
    systems: tuple[str, ...]
    description: str
    kind: str = ""
    page: bool = True  # whether it must page; False: it may wait for triage
    convinced_at: float | None = None  # when the evidence would convince a human (seconds)


@dataclass(frozen=True)
class Window:
    system: str
    start: float
    end: float
    reason: str


@dataclass(frozen=True)
class Snooze:
    match: dict[str, str]
    reason: str


@dataclass
class Scenario:
    seed: int
    rounds: int
    events: list[Event]
    incidents: dict[str, Incident]
    maintenance: list[Window]
    snoozes: list[Snooze]

    @property
    def signals(self) -> int:
        return sum(1 for e in self.events if e.action == "signal")


def campaign_convinced(events: list[Event]) -> float | None:
    """When a campaign's evidence would convince a human (see the module's docstring)."""
    hits: set[str] = set()
    first: float | None = None
    reported = False
    for e in sorted(events, key=lambda e: e.at):
        if e.action != "signal":
            continue
        conversation = e.signal.get("conversation_id")
        if e.signal.get("source") == "report":
            reported = reported or conversation in hits
        elif e.signal.get("archetype") == "prompt_injection" and conversation:
            hits.add(conversation)
            first = e.at if first is None else first
        if first is not None and (
            (len(hits) >= 3 and reported) or (len(hits) >= 5 and e.at - first >= 30 * MINUTE)
        ):
            return e.at
    return None
