"""The correlation and severity policy: loading it, and scoring a candidate's severity.

Severity weighs the evidence of the event (breadth, volume against the system's baseline,
harm reported by people, success against attempt, detector confidence, persistence, what
leaked) and the inventory's facts about its systems (data, irreversible tools, risk tier,
regulation, whether a control can stop it); without evidence of impact the inventory counts
only a few points, so that it raises an event but does not open an incident alone.

The defaults ship as `severity_policy.yaml` beside this module; a file named by the setting
`correlation_policy` replaces them section by section. A policy that does not validate is
refused with every problem listed, at start-up rather than on the first signal.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.incidents.schemas import Archetype, Severity
from blastwall.settings import get_settings

log = logging.getLogger("blastwall.correlation")
DEFAULT_PATH = Path(__file__).with_name("severity_policy.yaml")
SIGNAL_SEVERITIES = ("info", "warning", "high", "critical")
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")  # gravest first
FINGERPRINT_FIELDS = frozenset(
    {
        "source",
        "kind",
        "system",
        "archetype",
        "detector",
        "fingerprint",
        "reference",
        "conversation_id",
        "trace_id",
    }
)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a duration; write e.g. 90s, 15m, 24h or 2d")
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grouping(Strict):
    window: Duration
    quiet_period: Duration
    min_candidate_severity: str = Field(pattern="^(info|warning|high|critical)$")
    min_candidate_confidence: float = Field(ge=0, le=1)
    decline_snooze: Duration
    component_attributes: dict[str, list[str]]


def _fields(value: list[str]) -> list[str]:
    for name in value:
        if name not in FINGERPRINT_FIELDS and not name.startswith("attributes."):
            known = ", ".join(sorted(FINGERPRINT_FIELDS))
            raise ValueError(f"unknown field '{name}'; use {known} or attributes.<name>")
    return value


FingerprintFields = Annotated[list[str], Field(min_length=1)]


class Inhibition(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    when: Archetype
    holds: list[Archetype] = Field(min_length=1)
    via: list[str] = Field(min_length=1)


class Tier(Strict):
    at_least: int = Field(ge=0)
    points: int


class ScaleTier(Strict):
    systems_at_least: int = Field(ge=1)
    points: int


class Reversibility(Strict):
    points: int
    irreversible_permissions: list[str]


class Regulatory(Strict):
    eu_ai_act_high_risk: int
    personal_data: int


class Ongoing(Strict):
    within: Duration
    ongoing_unstoppable: int
    ongoing_stoppable: int
    stopped: int
    stop_controls: list[str]


class VolumeTier(Strict):
    times_baseline: float = Field(gt=0)
    points: int


class Volume(Strict):
    baseline_window: Duration
    baseline_floor: float = Field(ge=0)  # signals per hour
    at_least: int = Field(ge=1)
    tiers: list[VolumeTier]


class Harm(Strict):
    report: int
    corroborated: int
    several_at_least: int = Field(ge=2)
    several: int


class Outcome(Strict):
    succeeded: int
    blocked: int
    blocked_kinds: list[str]
    executed_kinds: list[str]
    blocked_outcomes: list[str]
    executed_outcomes: list[str]


class ConfidenceTier(Strict):
    at_least: float = Field(ge=0, le=1)
    points: int


class PersistenceTier(Strict):
    after: Duration
    points: int


class Leaked(Strict):
    types: dict[str, int]
    kinds: dict[str, int]
    contact_types: list[str]
    contact_at_least: int = Field(ge=1)
    data_left_at_least: int


class Factors(Strict):
    signal_severity: dict[str, int]
    affected: list[Tier]
    data_sensitivity: dict[str, int]
    reversibility: Reversibility
    decision_significance: dict[str, int]
    scale: list[ScaleTier]
    regulatory: Regulatory
    ongoing: Ongoing
    # evidence of the event; a factor left out is not weighed (older policy files)
    volume: Volume | None = None
    harm: Harm | None = None
    outcome: Outcome | None = None
    confidence: list[ConfidenceTier] | None = None
    persistence: list[PersistenceTier] | None = None
    leaked: Leaked | None = None


class ImpactGate(Strict):
    evidence_at_least: int
    inventory_without_impact: int = Field(ge=0)


class Escalation(Strict):
    after: Duration
    owner: str = Field(min_length=1, max_length=200)


class SeverityPolicy(Strict):
    open_incident_at: Severity
    levels: dict[str, int]
    factors: Factors
    impact: ImpactGate | None = None
    escalation: Escalation | None = None


class Policy(Strict):
    version: int = 1
    grouping: Grouping
    fingerprints: dict[str, FingerprintFields]
    inhibitions: list[Inhibition] = Field(default_factory=list)
    severity: SeverityPolicy

    def fingerprint_fields(self, source: str) -> list[str]:
        return self.fingerprints.get(source) or self.fingerprints["default"]


def _check(policy: Policy) -> list[Problem]:
    problems: list[Problem] = []
    if "default" not in policy.fingerprints:
        problems.append(Problem("fingerprints", "add a `default` entry for other sources"))
    for source, names in policy.fingerprints.items():
        try:
            _fields(names)
        except ValueError as exc:
            problems.append(Problem(f"fingerprints.{source}", str(exc)))
    for level in policy.severity.levels:
        if level not in ("SEV1", "SEV2", "SEV3"):
            problems.append(Problem(f"severity.levels.{level}", "use SEV1, SEV2 and SEV3"))
    points = [policy.severity.levels.get(s) for s in ("SEV1", "SEV2", "SEV3")]
    if None in points:
        problems.append(Problem("severity.levels", "give the points of SEV1, SEV2 and SEV3"))
    elif points != sorted(points, reverse=True):  # type: ignore[type-var]
        problems.append(Problem("severity.levels", "SEV1 needs the most points, SEV3 the fewest"))
    signal_points = policy.severity.factors.signal_severity
    for name in (s for s in SIGNAL_SEVERITIES if s not in signal_points):
        problems.append(Problem(f"severity.factors.signal_severity.{name}", "give its points"))
    return problems


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read the correlation policy {path}: {exc.strerror}. Fix the path in "
            "BLASTWALL_CORRELATION_POLICY, or unset it to use the defaults."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidInput(
            f"The correlation policy {path} is not valid YAML.",
            [Problem(str(path), str(getattr(exc, "problem", exc)), line)],
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(
            f"The correlation policy {path} must be a mapping of sections "
            "(grouping, fingerprints, inhibitions, severity)."
        )
    return data


def load_policy(path: Path | None = None) -> Policy:
    """The default policy, with the sections of the file at `path` (if any) replacing the
    default ones; InvalidInput listing every problem when the result does not validate."""
    data = _read(DEFAULT_PATH)
    where = str(DEFAULT_PATH)
    if path is not None:
        data.update(_read(path))
        where = str(path)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            f"The correlation policy {where} is invalid; fix these and retry.",
            [Problem(field_path(e["loc"]), e["msg"]) for e in exc.errors()],
        ) from None
    problems = _check(policy)
    if problems:
        raise InvalidInput(f"The correlation policy {where} is invalid.", problems)
    return policy


@lru_cache(maxsize=4)
def _cached(path: Path | None, mtime: float | None) -> Policy:
    return load_policy(path)


_last_good: dict[Path | None, Policy] = {}


def current_policy(path: Path | None) -> Policy:
    """The policy at `path` (None: the defaults), read again when the file changes. The
    first read raises InvalidInput when the policy is invalid; a later edit that breaks it
    is logged and the last valid version stays in force, so that signals are never refused
    for a policy mistake."""
    mtime = path.stat().st_mtime if path is not None and path.exists() else None
    try:
        policy = _cached(path, mtime)
    except InvalidInput as exc:
        if path not in _last_good:
            raise
        log.error("%s; the previous version stays in force", exc)
        return _last_good[path]
    _last_good[path] = policy
    return policy


def policy_in_force() -> Policy:
    """The policy the settings name (`correlation_policy`), or the defaults."""
    return current_policy(get_settings().correlation_policy)


# --- severity -------------------------------------------------------------------------------

INVENTORY_FACTORS = frozenset(
    {"data_sensitivity", "reversibility", "decision_significance", "regulatory", "ongoing"}
)
"""What the inventory says about the systems; every other factor weighs the evidence."""


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


def _evidence(f: Factors, impact: Impact, add: Any) -> None:
    if f.volume is not None:
        v = f.volume
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
    _evidence(f, impact, add)
    evidence = sum(i["points"] for i in out if i["factor"] not in INVENTORY_FACTORS)
    inventory = sum(i["points"] for i in out if i["factor"] in INVENTORY_FACTORS)
    gate = policy.impact
    if gate is not None:
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
    total = sum(item["points"] for item in out)
    severity = next(
        (s for s in (Severity.SEV1, Severity.SEV2, Severity.SEV3) if total >= policy.levels[s]),
        Severity.SEV4,
    )
    return Assessment(severity=severity, points=total, factors=out, evidence=evidence)


def at_or_above(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def signal_rank(severity: str) -> int:
    return SIGNAL_SEVERITIES.index(severity) if severity in SIGNAL_SEVERITIES else 0
