"""One round of a scenario as it is built: the events added so far, the true incidents they
belong to, and the scenario kind being written."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from blastwall.correlation.scenarios.model import MINUTE, Event, Incident


class Round:
    """One round of a scenario as it is built: its events and true incidents so far."""

    def __init__(self, rng: random.Random, start: float, number: int) -> None:
        self.rng, self.start, self.n = rng, start, number
        self.events: list[Event] = []
        self.incidents: dict[str, Incident] = {}
        self.kind = "noise"

    def add(self, at: float, truth: str | None, signal: dict[str, Any]) -> None:
        alert = signal["fingerprint"] if signal.get("source") == "alertmanager" else None
        self.events.append(Event(self.start + at, "signal", truth, signal, alert, self.kind))

    def resolve(self, at: float, truth: str | None, alert: str) -> None:
        self.events.append(Event(self.start + at, "resolve", truth, alert=alert, kind=self.kind))

    def late(self, at: float) -> float:
        """A kind's start, a few minutes late by chance."""
        return at + self.rng.uniform(0, 10 * MINUTE)

    def truth(
        self, name: str, archetype: str, systems: tuple[str, ...], text: str, page: bool = True
    ) -> str:
        key = f"{name}-{self.n}"
        self.kind = name
        self.incidents[key] = Incident(key, archetype, systems, text, name, page)
        return key

    def settle(self, truth: str, convinced_at: float | None = None) -> None:
        mine = [e for e in self.events if e.truth == truth]
        self.events.append(Event(max(e.at for e in mine) + 20 * MINUTE, "settle", truth))
        incident = self.incidents[truth]
        if convinced_at is None and incident.page:
            convinced_at = min(e.at for e in mine if e.action == "signal")
        self.incidents[truth] = replace(incident, convinced_at=convinced_at)
