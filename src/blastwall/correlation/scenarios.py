"""Labelled scenario streams over the example inventory: true incidents mixed with benign
noise, duplicates, flapping alerts, a maintenance window and a snoozed exercise, each event
labelled with the incident it belongs to (None: noise). They measure correlation
(`bench/correlation.py`) and are drill material.

One round of a scenario, times from the round's start:

    0:00  injection campaign against support-chatbot: detector findings and guardrail
          blocks over 40 minutes in 25 conversations; a customer reports one of them
    1:00  vendor outage: openai errors on support-chatbot and refund-agent, flapping every
          4 minutes for 32 minutes; latency findings and alerts on both systems follow
    2:00  refund agent looping: runaway findings (loop, rate, spend) for 20 minutes
    3:00  maintenance window on fraud-scoring (declared): scoring errors and feature lag
    4:00  slow drift of code-assistant's answers: a finding every 30 minutes for 5 hours
    all   evaluation notes (info), low-confidence detector findings, and canary hits from a
          red-team exercise (covered by a snooze declared with the scenario); optionally,
          benign one-off guardrail warnings (`stray_warnings`)

Responders resolve each incident 20 minutes after its last signal (`settle` events).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

ROUND_SECONDS = 10 * 3600
MINUTE = 60.0

Action = Literal["signal", "resolve", "settle"]


@dataclass(frozen=True)
class Event:
    """One thing that happens `at` seconds into the scenario."""

    at: float
    action: Action
    truth: str | None  # the true incident it belongs to; None: noise
    signal: dict[str, Any] = field(default_factory=dict)  # Signal fields; `system` by name
    alert: str | None = None  # the alert's identity, for `resolve` and the baseline


@dataclass(frozen=True)
class Incident:
    name: str
    archetype: str
    systems: tuple[str, ...]
    description: str


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


def _finding(
    detector: str,
    system: str,
    kind: str,
    archetype: str,
    severity: str,
    confidence: float,
    summary: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "source": "detector",
        "detector": detector,
        "kind": kind,
        "system": system,
        "archetype": archetype,
        "severity": severity,
        "confidence": confidence,
        "fingerprint": f"{detector}:{system}:{kind}",
        "summary": summary,
        **extra,
    }


def _alert(
    name: str, system: str, severity: str, summary: str, archetype: str | None, **labels: str
) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": severity, "blastwall_system": system, **labels}
    return {
        "source": "alertmanager",
        "kind": name,
        "system": system,
        "archetype": archetype,
        "severity": severity,
        "summary": summary,
        "attributes": {"labels": all_labels},
        "fingerprint": f"{name}:{system}",
    }


class _Round:
    def __init__(self, rng: random.Random, start: float, number: int) -> None:
        self.rng, self.start, self.n = rng, start, number
        self.events: list[Event] = []
        self.incidents: dict[str, Incident] = {}

    def add(self, at: float, truth: str | None, signal: dict[str, Any]) -> None:
        alert = signal["fingerprint"] if signal.get("source") == "alertmanager" else None
        self.events.append(Event(self.start + at, "signal", truth, signal, alert))

    def settle(self, truth: str) -> None:
        last = max(e.at for e in self.events if e.truth == truth)
        self.events.append(Event(last + 20 * MINUTE, "settle", truth))

    def injection(self) -> None:
        truth = self.truth(
            "injection",
            "prompt_injection",
            ("support-chatbot",),
            "Prompt injection campaign against the support chatbot",
        )
        conversations = [f"{truth}-c{i}" for i in range(25)]
        for i in range(40):
            self.add(
                i * MINUTE + self.rng.uniform(0, 30),
                truth,
                _finding(
                    "prompt_injection",
                    "support-chatbot",
                    "prompt_injection",
                    "prompt_injection",
                    "high",
                    round(self.rng.uniform(0.75, 0.98), 2),
                    "Instruction override in a user message",
                    conversation_id=self.rng.choice(conversations),
                ),
            )
        for i in range(15):
            self.add(
                i * 160 + 20,
                truth,
                {
                    "source": "guardrail",
                    "kind": "jailbreak_blocked",
                    "system": "support-chatbot",
                    "archetype": "prompt_injection",
                    "severity": "warning",
                    "summary": "Guardrail blocked a jailbreak attempt",
                    "conversation_id": self.rng.choice(conversations),
                },
            )
        self.add(
            25 * MINUTE,
            truth,
            {
                "source": "report",
                "kind": "user_report",
                # as `create_report` finds it: from the conversation's telemetry
                "system": "support-chatbot",
                "severity": "warning",
                "summary": "The assistant showed me its hidden instructions",
                "conversation_id": self.rng.choice(conversations),
            },
        )
        self.settle(truth)

    def outage(self, at: float) -> None:
        truth = self.truth(
            "vendor-outage",
            "vendor_failure",
            ("support-chatbot", "refund-agent"),
            "openai API outage hitting two systems",
        )
        for system in ("support-chatbot", "refund-agent"):
            offset = 0.0 if system == "support-chatbot" else 5.0
            upstream = _alert(
                "UpstreamErrors",
                system,
                "critical",
                f"openai API errors above 20% for {system}",
                "vendor_failure",
                vendor="openai",
            )
            for k in range(8):  # flapping: firing for two minutes of every four
                fire = at + offset + k * 4 * MINUTE
                self.add(fire, truth, upstream)
                self.events.append(
                    Event(
                        self.start + fire + 2 * MINUTE,
                        "resolve",
                        truth,
                        alert=upstream["fingerprint"],
                    )
                )
            for k in range(15):
                self.add(
                    at + 90 + k * 2 * MINUTE + offset,
                    truth,
                    _finding(
                        "service_levels",
                        system,
                        "latency_p90",
                        "performance_degradation",
                        "warning",
                        0.9,
                        f"p90 latency of {system} above its objective",
                    ),
                )
            latency = _alert(
                "LLMLatencyHigh",
                system,
                "warning",
                f"LLM latency high on {system}",
                "performance_degradation",
            )
            self.add(at + 2 * MINUTE + offset, truth, latency)
            self.events.append(
                Event(self.start + at + 35 * MINUTE, "resolve", truth, alert=latency["fingerprint"])
            )
        self.settle(truth)

    def runaway(self, at: float) -> None:
        truth = self.truth(
            "refund-loop",
            "agentic_misalignment",
            ("refund-agent",),
            "Refund agent looping on issue-refund",
        )
        for kind, every, count in (
            ("action_loop", 1, 20),
            ("action_rate", 2, 10),
            ("spend_limit", 5, 4),
        ):
            for k in range(count):
                self.add(
                    at + k * every * MINUTE + self.rng.uniform(0, 20),
                    truth,
                    _finding(
                        "runaway",
                        "refund-agent",
                        kind,
                        "agentic_misalignment",
                        "high",
                        0.9,
                        f"refund-agent {kind.replace('_', ' ')} on issue-refund",
                        attributes={"tool": "issue-refund"},
                    ),
                )
        self.settle(truth)

    def drift(self, at: float) -> None:
        truth = self.truth(
            "drift",
            "model_manipulation",
            ("code-assistant",),
            "Slow drift of the code assistant's answers",
        )
        for k in range(11):
            self.add(
                at + k * 30 * MINUTE,
                truth,
                _finding(
                    "drift",
                    "code-assistant",
                    "output_drift",
                    "model_manipulation",
                    "warning",
                    0.7,
                    "Answer length and refusal rate drifted from the baseline",
                ),
            )
        self.settle(truth)

    def noise(self) -> None:
        systems = ["support-chatbot", "refund-agent", "code-assistant", "fraud-scoring"]
        for _ in range(30):
            system = self.rng.choice(systems)
            self.add(
                self.rng.uniform(0, ROUND_SECONDS - 3600),
                None,
                {
                    "source": "eval",
                    "kind": "eval_note",
                    "system": system,
                    "severity": "info",
                    "summary": f"Nightly evaluation of {system}: within tolerance",
                },
            )
        for _ in range(8):
            self.add(
                self.rng.uniform(0, ROUND_SECONDS - 3600),
                None,
                _finding(
                    "prompt_injection",
                    "code-assistant",
                    "prompt_injection",
                    "prompt_injection",
                    "warning",
                    round(self.rng.uniform(0.2, 0.45), 2),
                    "Weak injection pattern in a code comment",
                ),
            )
        for k in range(6):
            self.add(
                30 * MINUTE + k * 40 * MINUTE,
                None,
                _finding(
                    "canary",
                    "support-chatbot",
                    "canary_token_leak",
                    "data_exfiltration",
                    "critical",
                    1.0,
                    "Canary token in an answer (red-team exercise)",
                ),
            )
        for k in range(10):
            name = "ScoringErrors" if k % 2 else "FeatureLag"
            self.add(
                3 * 3600 + 5 * MINUTE + k * 3 * MINUTE,
                None,
                _alert(
                    name,
                    "fraud-scoring",
                    "critical" if k % 2 else "warning",
                    f"{name} during the retraining deploy",
                    None,
                ),
            )

    def stray(self, count: int) -> None:
        """Benign one-off warnings that look like the start of an incident to any rule: a
        person declines them, or a stricter policy waits for more."""
        for k in range(count):
            system = ("support-chatbot", "code-assistant", "fraud-scoring")[k % 3]
            self.add(
                self.rng.uniform(0, ROUND_SECONDS - 3600),
                None,
                {
                    "source": "guardrail",
                    "kind": f"policy_flag_{k}",
                    "system": system,
                    "archetype": "toxicity_abuse",
                    "severity": "warning",
                    "summary": "Guardrail flagged an answer as possibly offensive",
                },
            )

    def truth(self, name: str, archetype: str, systems: tuple[str, ...], text: str) -> str:
        key = f"{name}-{self.n}"
        self.incidents[key] = Incident(key, archetype, systems, text)
        return key


def generate(*, seed: int = 7, rounds: int = 5, stray_warnings: int = 0) -> Scenario:
    """A scenario of `rounds` rounds of ten hours, reproducible from `seed`; with
    `stray_warnings` benign one-off warnings per round besides the usual noise."""
    if rounds < 1:
        raise ValueError("a scenario has at least one round")
    rng = random.Random(seed)
    events: list[Event] = []
    incidents: dict[str, Incident] = {}
    maintenance: list[Window] = []
    for n in range(rounds):
        start = n * ROUND_SECONDS
        r = _Round(rng, start, n)
        r.injection()
        r.outage(3600)
        r.runaway(2 * 3600)
        r.drift(4 * 3600)
        r.noise()
        r.stray(stray_warnings)
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
