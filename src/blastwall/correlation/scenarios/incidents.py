"""The true incidents of a round, one function per scenario kind: each adds its signals to
the round from `at` seconds into it and settles its incident."""

from __future__ import annotations

from collections.abc import Callable

from blastwall.correlation.scenarios import build
from blastwall.correlation.scenarios.model import MINUTE, campaign_convinced
from blastwall.correlation.scenarios.round import Round


def injection(r: Round, at: float) -> None:
    truth = r.truth(
        "injection",
        "prompt_injection",
        ("support-chatbot",),
        "Prompt injection campaign against the support chatbot",
    )
    conversations = [f"{truth}-c{i}" for i in range(25)]
    for i in range(40):
        r.add(
            at + i * MINUTE + r.rng.uniform(0, 30),
            truth,
            build.injection(
                "support-chatbot",
                r.rng.choice(conversations),
                round(r.rng.uniform(0.75, 0.98), 2),
            ),
        )
    for i in range(15):
        r.add(
            at + i * 160 + 20,
            truth,
            {
                "source": "guardrail",
                "kind": "jailbreak_blocked",
                "system": "support-chatbot",
                "archetype": "prompt_injection",
                "severity": "warning",
                "summary": "Guardrail blocked a jailbreak attempt",
                "conversation_id": r.rng.choice(conversations),
            },
        )
    hit = next(e.signal["conversation_id"] for e in r.events if e.truth == truth)
    text = "The assistant showed me its hidden instructions"
    r.add(at + 25 * MINUTE, truth, build.report("support-chatbot", hit, text))
    r.settle(truth, campaign_convinced([e for e in r.events if e.truth == truth]))


def vendor_outage(r: Round, at: float) -> None:
    systems = ("support-chatbot", "refund-agent", "code-assistant")[: r.rng.randint(2, 3)]
    truth = r.truth(
        "vendor_outage",
        "vendor_failure",
        systems,
        f"openai API outage hitting {len(systems)} systems",
    )
    for number, system in enumerate(systems):
        offset = number * 5.0
        upstream = build.alert(
            "UpstreamErrors",
            system,
            "critical",
            f"openai API errors above 20% for {system}",
            "vendor_failure",
            vendor="openai",
        )
        for k in range(8):  # flapping: firing for two minutes of every four
            fire = at + offset + k * 4 * MINUTE
            r.add(fire, truth, upstream)
            r.resolve(fire + 2 * MINUTE, truth, upstream["fingerprint"])
        for k in range(15):
            r.add(
                at + 90 + k * 2 * MINUTE + offset,
                truth,
                build.finding(
                    "service_levels",
                    system,
                    "latency_p90",
                    "performance_degradation",
                    "warning",
                    0.9,
                    f"p90 latency of {system} above its objective",
                ),
            )
        latency = build.alert(
            "LLMLatencyHigh",
            system,
            "warning",
            f"LLM latency high on {system}",
            "performance_degradation",
        )
        r.add(at + 2 * MINUTE + offset, truth, latency)
        r.resolve(at + 35 * MINUTE, truth, latency["fingerprint"])
    r.settle(truth)


def runaway(r: Round, at: float) -> None:
    truth = r.truth(
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
            r.add(
                at + k * every * MINUTE + r.rng.uniform(0, 20),
                truth,
                build.finding(
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
    r.settle(truth)


def leak(r: Round, at: float) -> None:
    truth = r.truth(
        "leak",
        "data_exfiltration",
        ("code-assistant",),
        "A secret leaking in the code assistant's answers",
    )
    kind, confidence = r.rng.choice(
        [("api_key", 0.85), ("api_key", 0.85), ("private_key", 0.95), ("secret", 0.6)]
    )
    conversations = [f"{truth}-c{i}" for i in range(r.rng.randint(2, 4))]
    count = r.rng.randint(max(3, len(conversations)), 6)
    span = r.rng.uniform(20, 90) * MINUTE
    times = sorted(r.rng.uniform(0, span) for _ in range(count))
    seen: list[str] = []
    convinced: float | None = None
    for k, t in enumerate(times):
        conversation = conversations[k] if k < len(conversations) else None
        conversation = conversation or r.rng.choice(conversations)
        r.add(
            at + t,
            truth,
            build.finding(
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
            convinced = r.start + at + t
    r.settle(truth, convinced)


def drift(r: Round, at: float) -> None:
    truth = r.truth(
        "drift",
        "model_manipulation",
        ("code-assistant",),
        "Slow drift of the code assistant's answers",
        page=False,
    )
    for k in range(11):
        r.add(
            at + k * 30 * MINUTE,
            truth,
            build.finding(
                "drift",
                "code-assistant",
                "output_drift",
                "model_manipulation",
                "warning",
                0.7,
                "Answer length and refusal rate drifted from the baseline",
            ),
        )
    r.settle(truth)


def slow_campaign(r: Round, at: float) -> None:
    truth = r.truth(
        "slow_campaign",
        "prompt_injection",
        ("support-chatbot",),
        "A slow injection campaign against the support chatbot, with users' reports",
    )
    conversations = [f"{truth}-c{i}" for i in range(r.rng.randint(5, 9))]
    hits = r.rng.randint(30, 50)
    span = r.rng.uniform(120, 180) * MINUTE
    step = span / hits
    first_hit: dict[str, float] = {}
    for k in range(hits):
        t = at + k * step + r.rng.uniform(0, step)
        # the conversations join one by one, then the campaign goes on in all of them
        shown = conversations[: max(1, min(len(conversations), 1 + k // 3))]
        conversation = r.rng.choice(shown)
        first_hit.setdefault(conversation, t)
        confidence = round(r.rng.uniform(0.55, 0.95), 2)
        r.add(t, truth, build.injection("support-chatbot", conversation, confidence))
    for conversation in r.rng.sample(sorted(first_hit), min(len(first_hit), r.rng.randint(3, 6))):
        when = first_hit[conversation] + r.rng.uniform(2, 40) * MINUTE
        text = "The assistant answered me with insults about my order"
        r.add(when, truth, build.report("support-chatbot", conversation, text))
    r.settle(truth, campaign_convinced([e for e in r.events if e.truth == truth]))


def injection_tool_misuse(r: Round, at: float) -> None:
    truth = r.truth(
        "injection_tool_misuse",
        "prompt_injection",
        ("refund-agent",),
        "An injection that made the refund agent refund outside its limits",
    )
    conversation = f"{truth}-c0"
    trace = f"{r.rng.getrandbits(128):032x}"
    confidence = round(r.rng.uniform(0.7, 0.95), 2)
    r.add(at, truth, build.injection("refund-agent", conversation, confidence, trace_id=trace))
    t = at
    convinced = None
    for _ in range(r.rng.randint(1, 3)):
        t += r.rng.uniform(20, 120)
        amount = r.rng.randint(450, 2000)
        r.add(
            t,
            truth,
            build.finding(
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
        convinced = convinced or r.start + t
    r.settle(truth, convinced)


def flapping(r: Round, at: float) -> None:
    system = r.rng.choice(["support-chatbot", "refund-agent"])
    truth = r.truth(
        "flapping",
        "performance_degradation",
        (system,),
        f"Retrieval errors on {system}, the alert flapping",
    )
    alert = build.alert(
        "RetrievalErrors",
        system,
        "critical",
        f"Retrieval index errors above 5% for {system}",
        "performance_degradation",
    )
    for k in range(r.rng.randint(6, 12)):
        fire = at + k * 5 * MINUTE + r.rng.uniform(0, 30)
        r.add(fire, truth, alert)
        r.resolve(fire + 2 * MINUTE, truth, alert["fingerprint"])
    r.settle(truth)


MAKERS: dict[str, Callable[[Round, float], None]] = {
    "injection": injection,
    "vendor_outage": vendor_outage,
    "runaway": runaway,
    "leak": leak,
    "drift": drift,
    "slow_campaign": slow_campaign,
    "injection_tool_misuse": injection_tool_misuse,
    "flapping": flapping,
}
"""The maker of each kind of true incident."""
