"""The correlation and severity policy: its schema, loading it and checking it.
`severity.py` scores a candidate's severity with it.

The defaults ship as `severity_policy.yaml` beside this module; a file named by the setting
`correlation_policy` replaces them section by section. A policy that does not validate is
refused with every problem listed, at start-up rather than on the first signal.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from blastwall.errors import InvalidInput, Problem
from blastwall.incidents.schemas import Archetype, Severity
from blastwall.sections import SectionedPolicy

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


_FILE = SectionedPolicy(
    what="correlation policy",
    setting="BLASTWALL_CORRELATION_POLICY",
    sections="grouping, fingerprints, inhibitions, severity",
)


def load_policy(path: Path | None = None) -> Policy:
    """The default policy, with the sections of the file at `path` (if any) replacing the
    default ones; InvalidInput listing every problem when the result does not validate."""
    return _FILE.load(Policy, DEFAULT_PATH, path, _check)


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
