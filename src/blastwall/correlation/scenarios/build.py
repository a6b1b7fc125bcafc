"""The signals of a scenario, shaped as the sources send them: a detector's finding, an
Alertmanager alert, a person's report."""

from __future__ import annotations

from typing import Any


def finding(
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


def alert(
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


def report(system: str, conversation: str, summary: str) -> dict[str, Any]:
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


def injection(system: str, conversation: str, confidence: float, **extra: Any) -> dict[str, Any]:
    """A direct injection finding, severity as the injection detector gives it."""
    return finding(
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
