"""What a candidate's signals show, kept as they join it (`Candidate.evidence`), for the
severity policy's evidence factors:

    reports      people's reports; `reported` and `detected` conversations, and those in
                 both (`corroborated`: a report backs up a detector in the same conversation)
    outcome      `succeeded` (why, for the first few): a tool call that went through, an
                 injection followed in its conversation or trace by a report or a signal of
                 another kind, sensitive data that left; `attempts` and how many `blocked`
    confidence   the highest detector confidence
    leaks        what leaked: per type of the sensitive-data detector (`attributes.types`) or
                 leaking kind, the most distinct values one signal carried
    baseline     the systems' usual rate of such signals, per hour, when it started

Pure functions over a signal, the policy and the state (a JSON object); the caller stores
the new state on the candidate.
"""

from __future__ import annotations

from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from blastwall.correlation.policy import Leaked, Outcome, SeverityPolicy
from blastwall.correlation.service import SystemFacts
from blastwall.correlation.severity import Impact, leak_points
from blastwall.signals.models import Signal

MAX_LISTED = 1000  # conversations and traces remembered per list
MAX_SUCCESSES = 5  # signs of success explained
INJECTION = "prompt_injection"
LEAK_KIND = "sensitive_data_in_output"  # the sensitive-data detector's findings

__all__ = ["changes", "impact", "leaks_of", "observe", "outcome_of", "owner_of", "start"]


def start(baseline_per_hour: float) -> dict[str, Any]:
    """The evidence of a new candidate: nothing yet but its systems' baseline."""
    return {"baseline_per_hour": round(baseline_per_hour, 4)}


def outcome_of(policy: Outcome | None, signal: Signal) -> str | None:
    """`blocked` (an attempt that was stopped), `executed` (it went through) or None (the
    signal does not say), from `attributes.outcome` or `decision`, else from its kind."""
    if policy is None:
        return None
    attributes = signal.attributes or {}
    for name in ("outcome", "decision"):
        said = attributes.get(name)
        if isinstance(said, str):
            said = said.strip().lower()
            if said in policy.blocked_outcomes:
                return "blocked"
            if said in policy.executed_outcomes:
                return "executed"
    if any(fnmatchcase(signal.kind, p) for p in policy.blocked_kinds):
        return "blocked"
    if any(fnmatchcase(signal.kind, p) for p in policy.executed_kinds):
        return "executed"
    return None


def leaks_of(policy: Leaked | None, signal: Signal) -> dict[str, int]:
    """What the signal says leaked: the sensitive-data detector's `types` (distinct values of
    each), or its kind when the policy lists it as a leak in itself (a canary token)."""
    if policy is None:
        return {}
    found: dict[str, int] = {}
    types = (signal.attributes or {}).get("types")
    if signal.kind == LEAK_KIND and isinstance(types, dict):
        for name, count in types.items():
            if isinstance(name, str) and isinstance(count, int) and count > 0:
                found[name[:40]] = count
    if signal.kind in policy.kinds:
        found[signal.kind] = 1
    return found


def _add(state: dict[str, Any], name: str, value: str) -> bool:
    listed: list[str] = state.get(name) or []
    if value in listed or len(listed) >= MAX_LISTED:
        return False
    state[name] = [*listed, value]
    return True


def _succeeded(state: dict[str, Any], why: str) -> None:
    state["success_count"] = int(state.get("success_count", 0)) + 1
    listed: list[str] = state.get("succeeded") or []
    if len(listed) < MAX_SUCCESSES:
        state["succeeded"] = [*listed, why]


def observe(state: dict[str, Any] | None, signal: Signal, policy: SeverityPolicy) -> dict[str, Any]:
    """The candidate's evidence once `signal` joined it (a new object: the caller assigns
    it, so that the JSON column is written)."""
    state = dict(state or {})
    f = policy.factors
    outcome = outcome_of(f.outcome, signal)
    conversation = signal.conversation_id
    what = f"signal {signal.id}"
    if signal.source == "report":
        state["reports"] = int(state.get("reports", 0)) + 1
        if conversation:
            _add(state, "reported", conversation)
            if conversation in (state.get("detected") or []):
                _add(state, "corroborated", conversation)
    else:
        state["attempts"] = int(state.get("attempts", 0)) + 1
        if outcome == "blocked":
            state["blocked"] = int(state.get("blocked", 0)) + 1
        if conversation:
            _add(state, "detected", conversation)
            if conversation in (state.get("reported") or []):
                _add(state, "corroborated", conversation)
        if signal.confidence is not None:
            state["confidence"] = max(float(state.get("confidence") or 0.0), signal.confidence)
    places = [f"conversation {conversation}"] if conversation else []
    places += [f"trace {signal.trace_id}"] if signal.trace_id else []
    injected = state.get("injected") or []
    if outcome != "blocked":
        if signal.archetype == INJECTION and signal.source != "report":
            for place in places:
                _add(state, "injected", place)
        elif followed := next((p for p in places if p in injected), None):
            by = "a report from a person" if signal.source == "report" else signal.kind
            _succeeded(state, f"the injection in {followed} was followed by {by} ({what})")
    if outcome == "executed" and signal.source != "report":
        _succeeded(state, f"{signal.kind} went through ({what})")
    leaks = dict(state.get("leaks") or {})
    for name, count in leaks_of(f.leaked, signal).items():
        leaks[name] = max(int(leaks.get(name, 0)), count)
        if f.leaked is not None and outcome != "blocked":
            points, why = leak_points(f.leaked, name, count)
            if points >= f.leaked.data_left_at_least:
                _succeeded(state, f"data left: {why} ({what})")
    if leaks:
        state["leaks"] = leaks
    return state


def impact(
    facts: list[SystemFacts],
    state: dict[str, Any],
    *,
    top_signal_severity: str,
    affected: int,
    systems: int,
    ongoing: bool,
    signals: int,
    first: datetime,
    now: datetime,
) -> Impact:
    """What the policy weighs: the systems' inventory facts and the evidence."""
    components = [f.spec.components for f in facts]
    return Impact(
        top_signal_severity=top_signal_severity,
        affected=affected,
        systems=systems,
        sensitivities=[d.sensitivity.value for c in components for d in c.data_sources],
        permissions=[p for c in components for t in c.tools for p in t.permissions],
        risk_tiers=[f.risk_tier for f in facts],
        high_risk=any(f.high_risk for f in facts),
        ongoing=ongoing,
        controls=[c.value for f in facts for c in f.spec.controls],
        signals=signals,
        minutes=max((now - first).total_seconds() / 60, 0.0),
        baseline_per_hour=float(state.get("baseline_per_hour") or 0.0),
        reports=int(state.get("reports", 0)),
        corroborated=len(state.get("corroborated") or []),
        succeeded=list(state.get("succeeded") or []),
        attempts=int(state.get("attempts", 0)),
        blocked=int(state.get("blocked", 0)),
        confidence=state.get("confidence"),
        leaks={str(k): int(v) for k, v in (state.get("leaks") or {}).items()},
    )


def owner_of(facts: list[SystemFacts], fallback: str) -> tuple[str, str]:
    """The triage owner of a candidate's systems: the on-call of the first that names one,
    else its owner's team, else `fallback`; and where it comes from."""
    for f in facts:
        if f.spec.on_call is not None:
            return f.spec.on_call.name, f"on-call of {f.id}"
    if facts:
        return facts[0].spec.owner.team, f"owner of {facts[0].id}"
    return fallback, "the policy's escalation owner"


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    """The factors whose points changed, `harm 0 → +4 (why)`, for a timeline entry."""
    old = {f["factor"]: f["points"] for f in before}
    return [
        f"{f['factor']} {old.get(f['factor'], 0):+d} → {f['points']:+d} ({f['why']})"
        for f in after
        if f["points"] != old.get(f["factor"], 0)
    ]
