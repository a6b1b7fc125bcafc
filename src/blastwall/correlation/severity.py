"""Scoring a candidate's severity with the severity policy (`policy.py`).

Severity weighs the evidence of the event (breadth, volume against the system's baseline,
harm reported by people, success against attempt, detector confidence, persistence, what
leaked) and the inventory's facts about its systems (data, irreversible tools, risk tier,
regulation, whether a control can stop it); without evidence of impact the inventory counts
only a few points, so that it raises an event but does not open an incident alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from blastwall.correlation.policy import (
    SEVERITIES,
    SIGNAL_SEVERITIES,
    Factors,
    ImpactGate,
    Leaked,
    SeverityPolicy,
    Tier,
    Volume,
)
from blastwall.incidents.schemas import Severity

INVENTORY_FACTORS = frozenset(
    {"data_sensitivity", "reversibility", "decision_significance", "regulatory", "ongoing"}
)
"""What the inventory says about the systems; every other factor weighs the evidence."""

Add = Callable[[str, int, str], None]
"""Records a factor: its name, its points and why."""


@dataclass
class Impact:
    """What the severity policy weighs, gathered from a candidate, its evidence and its
    systems."""

    top_signal_severity: str
    affected: int
    systems: int
    sensitivities: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    risk_tiers: list[str] = field(default_factory=list)
    high_risk: bool = False
    ongoing: bool = False
    controls: list[str] = field(default_factory=list)
    # the evidence
    signals: int = 1
    minutes: float = 0.0  # from the first signal to now
    baseline_per_hour: float = 0.0  # the systems' usual rate of such signals
    reports: int = 0
    corroborated: int = 0  # reported conversations where a detector found something too
    succeeded: list[str] = field(default_factory=list)  # why, for each sign of success
    attempts: int = 0  # signals other than people's reports
    blocked: int = 0  # of which blocked or denied
    confidence: float | None = None  # the highest detector confidence
    leaks: dict[str, int] = field(default_factory=dict)  # what leaked: most values in one


@dataclass(frozen=True)
class Assessment:
    severity: Severity
    points: int
    factors: list[dict[str, Any]]
    evidence: int = 0  # the points of the evidence factors

    def explain(self) -> str:
        return explain_factors(self.severity, self.points, self.factors)


def explain_factors(severity: str, points: int, factors: list[dict[str, Any]]) -> str:
    """`SEV2 from 11 points: signal_severity +2 (...); impact -5 (...)`."""
    parts = [f"{f['factor']} {f['points']:+d} ({f['why']})" for f in factors if f["points"]]
    return f"{severity} from {points} points: " + ("; ".join(parts) or "no factor applies")


def _tier(tiers: list[Tier], value: int) -> int:
    return next(
        (t.points for t in sorted(tiers, key=lambda t: -t.at_least) if value >= t.at_least), 0
    )


def _best(points: dict[str, int], values: list[str]) -> tuple[int, str | None]:
    scored = [(points.get(v, 0), v) for v in values]
    return max(scored) if scored else (0, None)


def leak_points(policy: Leaked, name: str, count: int) -> tuple[int, str]:
    """The points of `count` distinct values of a leaked type (or a leaking signal kind),
    and why: one e-mail address or phone number is likely the user's own, echoed back."""
    if name in policy.contact_types and count < policy.contact_at_least:
        return 0, f"{name} ({count}): likely the user's own, echoed back"
    return policy.types.get(name, policy.kinds.get(name, 0)), f"{name} ({count})"


def _volume(v: Volume, impact: Impact, add: Add) -> None:
    """How many signals against the systems' usual rate of such signals."""
    hours = max(impact.minutes / 60, 1.0)
    rate = max(impact.baseline_per_hour, v.baseline_floor)
    times = impact.signals / (rate * hours) if rate else float(impact.signals)
    points = next(
        (
            t.points
            for t in sorted(v.tiers, key=lambda t: -t.times_baseline)
            if times >= t.times_baseline
        ),
        0,
    )
    seen = f"{impact.signals} signals in {impact.minutes:.0f} min"
    if impact.signals < v.at_least:
        add("volume", 0, f"{seen}: fewer than {v.at_least}")
    else:
        add("volume", points, f"{seen}, {times:.1f}x the baseline of {rate:.2g}/h")


def _evidence(f: Factors, impact: Impact, add: Add) -> None:
    """The factors of the evidence of the event; a factor the policy leaves out is not
    weighed."""
    if f.volume is not None:
        _volume(f.volume, impact, add)
    if f.harm is not None:
        h = f.harm
        if not impact.reports:
            add("harm", 0, "no report from people")
        else:
            points = h.corroborated if impact.corroborated else h.report
            points += h.several if impact.reports >= h.several_at_least else 0
            add(
                "harm",
                points,
                f"{impact.reports} report(s) from people"
                + (
                    f", {impact.corroborated} in a conversation where a detector found "
                    "something too"
                    if impact.corroborated
                    else ", none in a conversation a detector found something in"
                ),
            )
    if f.outcome is not None:
        if impact.succeeded:
            more = len(impact.succeeded) - 2
            why = "; ".join(impact.succeeded[:2]) + (f"; and {more} more" if more > 0 else "")
            add("outcome", f.outcome.succeeded, f"it got through: {why}")
        elif impact.attempts and impact.blocked == impact.attempts:
            add("outcome", f.outcome.blocked, f"attempts only: all {impact.blocked} blocked")
        else:
            add("outcome", 0, "no sign yet that it got through")
    if f.confidence is not None:
        if impact.confidence is None:
            add("confidence", 0, "no detector confidence given")
        else:
            points = next(
                (
                    t.points
                    for t in sorted(f.confidence, key=lambda t: -t.at_least)
                    if impact.confidence >= t.at_least
                ),
                0,
            )
            add("confidence", points, f"highest detector confidence {impact.confidence:.2f}")
    if f.persistence is not None:
        went_on = timedelta(minutes=impact.minutes)
        points = next(
            (t.points for t in sorted(f.persistence, key=lambda t: -t.after) if went_on >= t.after),
            0,
        )
        going = "still going" if impact.ongoing else "stopped"
        add(
            "persistence",
            points if impact.ongoing else 0,
            f"{going} after {impact.minutes:.0f} min",
        )
    if f.leaked is not None:
        scored = sorted(
            (leak_points(f.leaked, name, count) for name, count in impact.leaks.items()),
            key=lambda p: -p[0],
        )
        if scored:
            add("leaked", scored[0][0], "; ".join(why for _, why in scored))
        else:
            add("leaked", 0, "nothing sensitive seen leaving")


def assess(policy: SeverityPolicy, impact: Impact) -> Assessment:
    """The severity the policy gives an impact, with the points of each factor and why.
    Below `impact.evidence_at_least` points of evidence, the inventory's factors count at
    most `impact.inventory_without_impact` points together (the `impact` factor says so)."""
    f = policy.factors
    out: list[dict[str, Any]] = []

    def add(name: str, points: int, why: str) -> None:
        out.append({"factor": name, "points": points, "why": why})

    _weighed_always(f, impact, add)
    _evidence(f, impact, add)
    evidence = sum(i["points"] for i in out if i["factor"] not in INVENTORY_FACTORS)
    inventory = sum(i["points"] for i in out if i["factor"] in INVENTORY_FACTORS)
    if policy.impact is not None:
        _impact_gate(policy.impact, evidence, inventory, add)
    total = sum(item["points"] for item in out)
    severity = next(
        (s for s in (Severity.SEV1, Severity.SEV2, Severity.SEV3) if total >= policy.levels[s]),
        Severity.SEV4,
    )
    return Assessment(severity=severity, points=total, factors=out, evidence=evidence)


def _weighed_always(f: Factors, impact: Impact, add: Add) -> None:
    """The factors every policy weighs: the strongest signal, how many conversations and
    systems, and the inventory's facts about the systems."""
    add(
        "signal_severity",
        f.signal_severity.get(impact.top_signal_severity, 0),
        f"strongest signal is {impact.top_signal_severity}",
    )
    add("affected", _tier(f.affected, impact.affected), f"{impact.affected} conversations or users")
    points, worst = _best(f.data_sensitivity, impact.sensitivities)
    add("data_sensitivity", points, f"{worst} data" if worst else "no data sources declared")
    irreversible = sorted(
        {
            p
            for p in impact.permissions
            if any(fnmatchcase(p, pattern) for pattern in f.reversibility.irreversible_permissions)
        }
    )
    add(
        "reversibility",
        f.reversibility.points if irreversible else 0,
        f"tools that cannot be undone: {', '.join(irreversible)}"
        if irreversible
        else "no irreversible tool permissions",
    )
    points, tier = _best(f.decision_significance, impact.risk_tiers)
    add("decision_significance", points, f"risk tier {tier}" if tier else "no registered system")
    scale = next(
        (
            t.points
            for t in sorted(f.scale, key=lambda t: -t.systems_at_least)
            if impact.systems >= t.systems_at_least
        ),
        0,
    )
    add("scale", scale, f"{impact.systems} system(s)")
    personal = any(s in ("personal", "restricted") for s in impact.sensitivities)
    reasons = (["EU AI Act high-risk system"] if impact.high_risk else []) + (
        ["personal data"] if personal else []
    )
    add(
        "regulatory",
        (f.regulatory.eu_ai_act_high_risk if impact.high_risk else 0)
        + (f.regulatory.personal_data if personal else 0),
        ", ".join(reasons) or "no regulatory exposure found",
    )
    stoppers = sorted(set(impact.controls) & set(f.ongoing.stop_controls))
    if not impact.ongoing:
        add("ongoing", f.ongoing.stopped, "no signal recently")
    elif stoppers:
        add(
            "ongoing",
            f.ongoing.ongoing_stoppable,
            f"ongoing; can be stopped: {', '.join(stoppers)}",
        )
    else:
        add("ongoing", f.ongoing.ongoing_unstoppable, "ongoing, and no declared control stops it")


def _impact_gate(gate: ImpactGate, evidence: int, inventory: int, add: Add) -> None:
    """Without enough evidence of impact, the inventory counts only so many points."""
    if evidence >= gate.evidence_at_least:
        add("impact", 0, f"evidence of impact ({evidence} points): the inventory counts")
    elif inventory > gate.inventory_without_impact:
        add(
            "impact",
            gate.inventory_without_impact - inventory,
            f"no evidence of impact yet ({evidence} points, fewer than "
            f"{gate.evidence_at_least}): the inventory counts {gate.inventory_without_impact} "
            f"of its {inventory} points",
        )


def at_or_above(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def signal_rank(severity: str) -> int:
    return SIGNAL_SEVERITIES.index(severity) if severity in SIGNAL_SEVERITIES else 0
