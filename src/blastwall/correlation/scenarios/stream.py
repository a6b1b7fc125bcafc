"""A whole scenario: rounds of true incidents and noise, reproducible from a seed."""

from __future__ import annotations

import random

from blastwall.correlation.scenarios.incidents import MAKERS
from blastwall.correlation.scenarios.model import (
    KINDS,
    MINUTE,
    ROUND_SECONDS,
    Event,
    Incident,
    Scenario,
    Snooze,
    Window,
)
from blastwall.correlation.scenarios.noise import benign_warnings, noise, stray
from blastwall.correlation.scenarios.round import Round

SCHEDULE: dict[str, float] = {
    "injection": 0.0,
    "vendor_outage": 1.0,
    "runaway": 2.0,
    "leak": 3.0,
    "drift": 4.0,
    "slow_campaign": 4.5,
    "injection_tool_misuse": 6.0,
    "flapping": 8.0,
}
"""When each kind of true incident starts in a round, in hours."""


def generate(
    *,
    seed: int = 7,
    rounds: int = 5,
    stray_warnings: int = 0,
    kinds: tuple[str, ...] | None = None,
) -> Scenario:
    """A scenario of `rounds` rounds of ten hours, reproducible from `seed`, with the given
    `kinds` (default: all of KINDS) besides the usual noise; with `stray_warnings` benign
    one-off warnings per round besides."""
    if rounds < 1:
        raise ValueError("a scenario has at least one round")
    chosen = KINDS if kinds is None else kinds
    unknown = sorted(set(chosen) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown scenario kinds {unknown}; choose from {', '.join(KINDS)}")
    rng = random.Random(seed)
    events: list[Event] = []
    incidents: dict[str, Incident] = {}
    maintenance: list[Window] = []
    for n in range(rounds):
        start = n * ROUND_SECONDS
        r = Round(rng, start, n)
        for kind in KINDS:
            if kind not in chosen:
                continue
            if kind == "benign_warnings":
                benign_warnings(r)
                continue
            MAKERS[kind](r, r.late(SCHEDULE[kind] * 3600))
        noise(r)
        stray(r, stray_warnings)
        events += r.events
        incidents.update(r.incidents)
        maintenance.append(
            Window(
                "fraud-scoring",
                start + 3 * 3600,
                start + 3 * 3600 + 45 * MINUTE,
                f"retraining deploy (change RISK-DEPLOY-{n})",
            )
        )
    events.sort(key=lambda e: (e.at, e.action != "signal"))
    snoozes = [
        Snooze(
            {"detector": "canary", "system": "support-chatbot"},
            "red-team exercise plants canary tokens (ticket SEC-88)",
        )
    ]
    return Scenario(seed, rounds, events, incidents, maintenance, snoozes)
