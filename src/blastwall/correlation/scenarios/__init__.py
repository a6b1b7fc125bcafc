"""Labelled scenario streams over the example inventory: true incidents of several kinds
mixed with benign noise, duplicates, flapping alerts, a maintenance window and a snoozed
exercise. Each event is labelled with the true incident it belongs to (None: noise) and with
its scenario kind. They measure correlation and severity (`bench/correlation.py`) and are
drill material.

One round of ten hours, times from the round's start (each kind starts a few minutes late,
by chance, and draws its sizes from the seed):

    0:00  injection        a fast campaign against support-chatbot: findings and guardrail
                           blocks over 40 minutes in 25 conversations, one customer's report
    1:00  vendor_outage    openai errors on two or three systems, flapping every 4 minutes
                           for 32 minutes; the latency findings and alerts they cause
    2:00  runaway          the refund agent looping on issue-refund for 20 minutes
    3:00  leak             a secret in code-assistant's answers: 3-6 findings, 2-4 conversations
    3:00  maintenance      declared on fraud-scoring: scoring errors and feature lag
    4:00  drift            code-assistant's answers drifting, a finding every 30 minutes for
                           5 hours (a ticket: it waits for triage, it need not page)
    4:30  slow_campaign    injection hits in 5-9 conversations over 2-3 hours, at detector
                           confidences of 0.55-0.95, and 3-6 user reports of offensive answers
                           in those conversations
    6:00  injection_tool_misuse  an injection in one refund-agent conversation, then refunds
                           above the limit in the same conversation and trace: one incident
    8:00  flapping         a critical alert firing two minutes in every five for 30-60 minutes
    any   benign_warnings  2-4 one-off warnings on the high-risk systems: the refund agent
                           quoting a customer's own e-mail address back, a feature-store
                           latency blip on fraud-scoring, a guardrail's "possibly offensive"
                           flag, a weak drift finding (noise: none may page)
    any   noise            evaluation notes (info), low-confidence findings, canary hits of a
                           red-team exercise (under a snooze); optionally `stray_warnings`

Responders resolve each incident 20 minutes after its last signal (`settle` events).

**When the evidence would convince a human** (`Incident.convinced_at`), the moment by which
a page is due, read off the stream as a person reading the signals would:

- a campaign of injections: hits from at least 3 conversations and a person's report in a
  conversation that has a hit; or hits from at least 5 conversations, the first 30 minutes
  old or more, whichever comes first;
- a leak: the first finding of a provider key or private key; for a bare high-entropy
  string (the detector is 0.6 confident), the first finding in a second conversation;
- an injection followed by tool misuse: the first tool call out of policy after it;
- a runaway agent, a vendor outage, a flapping critical alert: the first signal (a looping
  agent that spends money; a critical alert is the operator's own "wake me up").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
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


def _finding(
    detector: str,
    system: str,
    kind: str,
    archetype: str,
    severity: str,
    confidence: float,
    summary: str,
    *,
    key: str | None = None,
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
        "fingerprint": f"{detector}:{system}:{key or kind}",
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


def _report(system: str, conversation: str, summary: str) -> dict[str, Any]:
    """A person's report, as `create_report` stores it (its system found from the
    conversation's telemetry)."""
    return {
        "source": "report",
        "kind": "user_report",
        "system": system,
        "severity": "warning",
        "summary": summary,
        "conversation_id": conversation,
    }


def _injection(system: str, conversation: str, confidence: float, **extra: Any) -> dict[str, Any]:
    """A direct injection finding, severity as the injection detector gives it."""
    return _finding(
        "prompt_injection",
        system,
        "prompt_injection",
        "prompt_injection",
        "high" if confidence >= 0.9 else "warning",
        confidence,
        "Instruction override in a user message",
        conversation_id=conversation,
        **extra,
    )


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


class _Round:
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

    # -- true incidents ---------------------------------------------------------------------

    def injection(self, at: float) -> None:
        truth = self.truth(
            "injection",
            "prompt_injection",
            ("support-chatbot",),
            "Prompt injection campaign against the support chatbot",
        )
        conversations = [f"{truth}-c{i}" for i in range(25)]
        for i in range(40):
            self.add(
                at + i * MINUTE + self.rng.uniform(0, 30),
                truth,
                _injection(
                    "support-chatbot",
                    self.rng.choice(conversations),
                    round(self.rng.uniform(0.75, 0.98), 2),
                ),
            )
        for i in range(15):
            self.add(
                at + i * 160 + 20,
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
        hit = next(e.signal["conversation_id"] for e in self.events if e.truth == truth)
        text = "The assistant showed me its hidden instructions"
        self.add(at + 25 * MINUTE, truth, _report("support-chatbot", hit, text))
        self.settle(truth, campaign_convinced([e for e in self.events if e.truth == truth]))

    def outage(self, at: float) -> None:
        systems = ("support-chatbot", "refund-agent", "code-assistant")[: self.rng.randint(2, 3)]
        truth = self.truth(
            "vendor_outage",
            "vendor_failure",
            systems,
            f"openai API outage hitting {len(systems)} systems",
        )
        for number, system in enumerate(systems):
            offset = number * 5.0
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
                self.resolve(fire + 2 * MINUTE, truth, upstream["fingerprint"])
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
            self.resolve(at + 35 * MINUTE, truth, latency["fingerprint"])
        self.settle(truth)

    def runaway(self, at: float) -> None:
        truth = self.truth(
            "runaway",
            "agentic_misalignment",
            ("refund-agent",),
            "Refund agent looping on issue-refund",
        )
        for kind, every, count in (
            ("agent_tool_loop", 1, 20),
            ("agent_action_rate", 2, 10),
            ("agent_spend_budget", 5, 4),
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

    def leak(self, at: float) -> None:
        truth = self.truth(
            "leak",
            "data_exfiltration",
            ("code-assistant",),
            "A secret leaking in the code assistant's answers",
        )
        kind, confidence = self.rng.choice(
            [("api_key", 0.85), ("api_key", 0.85), ("private_key", 0.95), ("secret", 0.6)]
        )
        conversations = [f"{truth}-c{i}" for i in range(self.rng.randint(2, 4))]
        count = self.rng.randint(max(3, len(conversations)), 6)
        span = self.rng.uniform(20, 90) * MINUTE
        times = sorted(self.rng.uniform(0, span) for _ in range(count))
        seen: list[str] = []
        convinced: float | None = None
        for k, t in enumerate(times):
            conversation = conversations[k] if k < len(conversations) else None
            conversation = conversation or self.rng.choice(conversations)
            self.add(
                at + t,
                truth,
                _finding(
                    "sensitive_data",
                    "code-assistant",
                    "sensitive_data_in_output",
                    "data_exfiltration",
                    "high",
                    confidence,
                    f"Sensitive data in the output: {kind} (1)",
                    key=kind,
                    conversation_id=conversation,
                    attributes={"types": {kind: 1}, "channels": ["output"]},
                ),
            )
            seen += [conversation] if conversation not in seen else []
            if convinced is None and (kind != "secret" or len(seen) >= 2):
                convinced = self.start + at + t
        self.settle(truth, convinced)

    def drift(self, at: float) -> None:
        truth = self.truth(
            "drift",
            "model_manipulation",
            ("code-assistant",),
            "Slow drift of the code assistant's answers",
            page=False,
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

    def slow_campaign(self, at: float) -> None:
        truth = self.truth(
            "slow_campaign",
            "prompt_injection",
            ("support-chatbot",),
            "A slow injection campaign against the support chatbot, with users' reports",
        )
        conversations = [f"{truth}-c{i}" for i in range(self.rng.randint(5, 9))]
        hits = self.rng.randint(30, 50)
        span = self.rng.uniform(120, 180) * MINUTE
        step = span / hits
        first_hit: dict[str, float] = {}
        for k in range(hits):
            t = at + k * step + self.rng.uniform(0, step)
            # the conversations join one by one, then the campaign goes on in all of them
            shown = conversations[: max(1, min(len(conversations), 1 + k // 3))]
            conversation = self.rng.choice(shown)
            first_hit.setdefault(conversation, t)
            confidence = round(self.rng.uniform(0.55, 0.95), 2)
            self.add(t, truth, _injection("support-chatbot", conversation, confidence))
        for conversation in self.rng.sample(
            sorted(first_hit), min(len(first_hit), self.rng.randint(3, 6))
        ):
            when = first_hit[conversation] + self.rng.uniform(2, 40) * MINUTE
            text = "The assistant answered me with insults about my order"
            self.add(when, truth, _report("support-chatbot", conversation, text))
        self.settle(truth, campaign_convinced([e for e in self.events if e.truth == truth]))

    def injection_tool_misuse(self, at: float) -> None:
        truth = self.truth(
            "injection_tool_misuse",
            "prompt_injection",
            ("refund-agent",),
            "An injection that made the refund agent refund outside its limits",
        )
        conversation = f"{truth}-c0"
        trace = f"{self.rng.getrandbits(128):032x}"
        confidence = round(self.rng.uniform(0.7, 0.95), 2)
        self.add(at, truth, _injection("refund-agent", conversation, confidence, trace_id=trace))
        t = at
        convinced = None
        for _ in range(self.rng.randint(1, 3)):
            t += self.rng.uniform(20, 120)
            amount = self.rng.randint(450, 2000)
            self.add(
                t,
                truth,
                _finding(
                    "tool_policy",
                    "refund-agent",
                    "tool_constraint_violation",
                    "agentic_misalignment",
                    "high",
                    0.95,
                    f"Tool issue-refund called outside its limits: amount {amount} above 200",
                    key="issue-refund:amount",
                    conversation_id=conversation,
                    trace_id=trace,
                    attributes={"tool": "issue-refund", "argument": "amount", "value": amount},
                ),
            )
            convinced = convinced or self.start + t
        self.settle(truth, convinced)

    def flapping(self, at: float) -> None:
        system = self.rng.choice(["support-chatbot", "refund-agent"])
        truth = self.truth(
            "flapping",
            "performance_degradation",
            (system,),
            f"Retrieval errors on {system}, the alert flapping",
        )
        alert = _alert(
            "RetrievalErrors",
            system,
            "critical",
            f"Retrieval index errors above 5% for {system}",
            "performance_degradation",
        )
        for k in range(self.rng.randint(6, 12)):
            fire = at + k * 5 * MINUTE + self.rng.uniform(0, 30)
            self.add(fire, truth, alert)
            self.resolve(fire + 2 * MINUTE, truth, alert["fingerprint"])
        self.settle(truth)

    # -- noise ------------------------------------------------------------------------------

    def benign_warnings(self) -> None:
        """One-off warnings on the high-risk systems that a person would not page for."""
        self.kind = "benign_warnings"
        makers = [self._own_address, self._latency_blip, self._offensive_flag, self._weak_drift]
        for make in self.rng.sample(makers, self.rng.randint(2, 4)):
            make(self.rng.uniform(15 * MINUTE, ROUND_SECONDS - 3600))

    def _own_address(self, at: float) -> None:
        self.add(
            at,
            None,
            _finding(
                "sensitive_data",
                "refund-agent",
                "sensitive_data_in_output",
                "data_exfiltration",
                "high",  # the refund agent holds personal data: e-mail is raised to high
                0.85,
                "Sensitive data in the output: e-mail address (1)",
                key="email",
                conversation_id=f"own-address-{self.n}-{int(at)}",
                attributes={"types": {"email": 1}, "channels": ["output"]},
            ),
        )

    def _latency_blip(self, at: float) -> None:
        alert = _alert(
            "FeatureStoreLatencyHigh",
            "fraud-scoring",
            "warning",
            "Feature-store p99 latency above 250 ms",
            "performance_degradation",
            vendor="feature-store-co",
        )
        self.add(at, None, alert)
        self.resolve(at + 3 * MINUTE, None, alert["fingerprint"])

    def _offensive_flag(self, at: float) -> None:
        self.add(
            at,
            None,
            {
                "source": "guardrail",
                "kind": "toxicity_flag",
                "system": "refund-agent",
                "archetype": "toxicity_abuse",
                "severity": "warning",
                "summary": "Guardrail flagged an answer as possibly offensive",
                "conversation_id": f"flagged-{self.n}-{int(at)}",
            },
        )

    def _weak_drift(self, at: float) -> None:
        self.add(
            at,
            None,
            _finding(
                "drift",
                "fraud-scoring",
                "score_drift",
                "model_manipulation",
                "warning",
                0.55,
                "Score distribution drifted slightly from the baseline",
            ),
        )

    def noise(self) -> None:
        self.kind = "noise"
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
        """Benign one-off warnings that look like the start of an incident to any rule."""
        self.kind = "stray"
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
        r = _Round(rng, start, n)
        for kind in KINDS:
            if kind not in chosen:
                continue
            if kind == "benign_warnings":
                r.benign_warnings()
                continue
            make = {
                "injection": r.injection,
                "vendor_outage": r.outage,
                "runaway": r.runaway,
                "leak": r.leak,
                "drift": r.drift,
                "slow_campaign": r.slow_campaign,
                "injection_tool_misuse": r.injection_tool_misuse,
                "flapping": r.flapping,
            }[kind]
            make(r.late(SCHEDULE[kind] * 3600))
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
