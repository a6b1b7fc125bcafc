"""What a round holds besides its true incidents: benign one-off warnings on the high-risk
systems, evaluation notes, weak findings, a red-team exercise's canary hits, a maintenance
window's alerts, and stray warnings on request. None of it may page."""

from __future__ import annotations

from blastwall.correlation.scenarios import build
from blastwall.correlation.scenarios.model import MINUTE, ROUND_SECONDS
from blastwall.correlation.scenarios.round import Round


def benign_warnings(r: Round) -> None:
    """One-off warnings on the high-risk systems that a person would not page for."""
    r.kind = "benign_warnings"
    makers = [_own_address, _latency_blip, _offensive_flag, _weak_drift]
    for make in r.rng.sample(makers, r.rng.randint(2, 4)):
        make(r, r.rng.uniform(15 * MINUTE, ROUND_SECONDS - 3600))


def _own_address(r: Round, at: float) -> None:
    r.add(
        at,
        None,
        build.finding(
            "sensitive_data",
            "refund-agent",
            "sensitive_data_in_output",
            "data_exfiltration",
            "high",  # the refund agent holds personal data: e-mail is raised to high
            0.85,
            "Sensitive data in the output: e-mail address (1)",
            key="email",
            conversation_id=f"own-address-{r.n}-{int(at)}",
            attributes={"types": {"email": 1}, "channels": ["output"]},
        ),
    )


def _latency_blip(r: Round, at: float) -> None:
    alert = build.alert(
        "FeatureStoreLatencyHigh",
        "fraud-scoring",
        "warning",
        "Feature-store p99 latency above 250 ms",
        "performance_degradation",
        vendor="feature-store-co",
    )
    r.add(at, None, alert)
    r.resolve(at + 3 * MINUTE, None, alert["fingerprint"])


def _offensive_flag(r: Round, at: float) -> None:
    r.add(
        at,
        None,
        {
            "source": "guardrail",
            "kind": "toxicity_flag",
            "system": "refund-agent",
            "archetype": "toxicity_abuse",
            "severity": "warning",
            "summary": "Guardrail flagged an answer as possibly offensive",
            "conversation_id": f"flagged-{r.n}-{int(at)}",
        },
    )


def _weak_drift(r: Round, at: float) -> None:
    r.add(
        at,
        None,
        build.finding(
            "drift",
            "fraud-scoring",
            "score_drift",
            "model_manipulation",
            "warning",
            0.55,
            "Score distribution drifted slightly from the baseline",
        ),
    )


def noise(r: Round) -> None:
    r.kind = "noise"
    systems = ["support-chatbot", "refund-agent", "code-assistant", "fraud-scoring"]
    for _ in range(30):
        system = r.rng.choice(systems)
        r.add(
            r.rng.uniform(0, ROUND_SECONDS - 3600),
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
        r.add(
            r.rng.uniform(0, ROUND_SECONDS - 3600),
            None,
            build.finding(
                "prompt_injection",
                "code-assistant",
                "prompt_injection",
                "prompt_injection",
                "warning",
                round(r.rng.uniform(0.2, 0.45), 2),
                "Weak injection pattern in a code comment",
            ),
        )
    for k in range(6):
        r.add(
            30 * MINUTE + k * 40 * MINUTE,
            None,
            build.finding(
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
        r.add(
            3 * 3600 + 5 * MINUTE + k * 3 * MINUTE,
            None,
            build.alert(
                name,
                "fraud-scoring",
                "critical" if k % 2 else "warning",
                f"{name} during the retraining deploy",
                None,
            ),
        )


def stray(r: Round, count: int) -> None:
    """Benign one-off warnings that look like the start of an incident to any rule."""
    r.kind = "stray"
    for k in range(count):
        system = ("support-chatbot", "code-assistant", "fraud-scoring")[k % 3]
        r.add(
            r.rng.uniform(0, ROUND_SECONDS - 3600),
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
