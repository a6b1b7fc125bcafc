"""The correlation and severity policy: loading it, and scoring a candidate's severity.

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


class Factors(Strict):
    signal_severity: dict[str, int]
    affected: list[Tier]
    data_sensitivity: dict[str, int]
    reversibility: Reversibility
    decision_significance: dict[str, int]
    scale: list[ScaleTier]
    regulatory: Regulatory
    ongoing: Ongoing


class SeverityPolicy(Strict):
    open_incident_at: Severity
    levels: dict[str, int]
    factors: Factors


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


@dataclass
class Impact:
    """What the severity policy weighs, gathered from a candidate and its systems."""

    top_signal_severity: str
    affected: int
    systems: int
    sensitivities: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    risk_tiers: list[str] = field(default_factory=list)
    high_risk: bool = False
    ongoing: bool = False
    controls: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Assessment:
    severity: str
    points: int
    factors: list[dict[str, Any]]

    def explain(self) -> str:
        parts = [f"{f['factor']} +{f['points']} ({f['why']})" for f in self.factors if f["points"]]
        return f"{self.severity} from {self.points} points: " + ("; ".join(parts) or "none")


def _tier(tiers: list[Tier], value: int) -> int:
    return next(
        (t.points for t in sorted(tiers, key=lambda t: -t.at_least) if value >= t.at_least), 0
    )


def _best(points: dict[str, int], values: list[str]) -> tuple[int, str | None]:
    scored = [(points.get(v, 0), v) for v in values]
    return max(scored) if scored else (0, None)


def assess(policy: SeverityPolicy, impact: Impact) -> Assessment:
    """The severity the policy gives an impact, with the points of each factor and why."""
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
    total = sum(item["points"] for item in out)
    severity = next(
        (s for s in ("SEV1", "SEV2", "SEV3") if total >= policy.levels[s]),
        "SEV4",
    )
    return Assessment(severity=severity, points=total, factors=out)


def at_or_above(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) <= SEVERITIES.index(threshold)


def signal_rank(severity: str) -> int:
    return SIGNAL_SEVERITIES.index(severity) if severity in SIGNAL_SEVERITIES else 0
