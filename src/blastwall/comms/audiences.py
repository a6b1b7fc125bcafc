"""The audiences of status updates and their cadence: the policy's schema, loading it and
checking it.

The defaults ship as `audiences.yaml` beside this module; a file named by the setting
`audience_policy` replaces them section by section (`audiences`, `cadence`), as the
correlation policy does. A policy that does not validate is refused with every problem
listed.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from blastwall.auth.roles import Role
from blastwall.errors import InvalidInput, Problem
from blastwall.incidents.schemas import IncidentRole, Severity
from blastwall.sections import SectionedPolicy

__all__ = [
    "DEFAULT_PATH",
    "RESPONDERS",
    "Audience",
    "AudiencePolicy",
    "Cadence",
    "Publishers",
    "RedactionClass",
    "current_audiences",
    "load_audiences",
]

log = logging.getLogger("blastwall.comms")
DEFAULT_PATH = Path(__file__).with_name("audiences.yaml")
RESPONDERS = "responders"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class RedactionClass(StrEnum):
    """What an update's text may hold that an audience may not be allowed to see."""

    prompts = "prompts"
    outputs = "outputs"
    system_instructions = "system_instructions"
    personal_data = "personal_data"
    secrets = "secrets"
    internal_names = "internal_names"
    model_internals = "model_internals"


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"'{value}' is not a duration; write e.g. 90s, 15m, 24h or 2d")
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
AudienceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Publishers(Strict):
    """Who may publish to an audience (and approve an update to it): a token of one of
    `roles`, or whoever holds one of `incident_roles` on the incident."""

    roles: list[Role] = Field(default_factory=list)
    incident_roles: list[IncidentRole] = Field(default_factory=list)


class Audience(Strict):
    channels: list[str] = Field(default_factory=list)
    publishers: Publishers = Publishers(roles=[Role.admin])
    approval: bool = Field(
        default=False, description="A second person, not the author, approves each update."
    )
    public: bool = Field(default=False, description="Its channels are public (status page).")
    external: bool = Field(
        default=False, description="Outside the organisation: hypotheses never pass as facts."
    )
    sees: list[RedactionClass] = Field(default_factory=list)

    def hides(self) -> frozenset[RedactionClass]:
        """The redaction classes removed from this audience's rendering."""
        return frozenset(RedactionClass) - frozenset(self.sees)


class Cadence(Strict):
    grace: Duration = timedelta(minutes=15)
    severities: dict[Severity, dict[AudienceName, Duration]] = Field(default_factory=dict)

    def interval(self, severity: str, audience: str) -> timedelta | None:
        """How often `audience` hears from an incident of `severity`; None: no cadence."""
        return self.severities.get(Severity(severity), {}).get(audience)


class AudiencePolicy(Strict):
    version: int = 1
    audiences: dict[AudienceName, Audience]
    cadence: Cadence = Cadence()

    def audience(self, name: str) -> Audience:
        """The audience called `name`; InvalidInput naming the declared ones otherwise."""
        found = self.audiences.get(name)
        if found is None:
            raise InvalidInput(
                f"No audience '{name}'.",
                [Problem("audience", f"use one of {', '.join(sorted(self.audiences))}")],
            )
        return found


def _check(policy: AudiencePolicy) -> list[Problem]:
    problems: list[Problem] = []
    if RESPONDERS not in policy.audiences:
        problems.append(Problem("audiences", "declare a `responders` audience"))
    for severity, intervals in policy.cadence.severities.items():
        for name, interval in intervals.items():
            where = f"cadence.severities.{severity.value}.{name}"
            if name not in policy.audiences:
                problems.append(Problem(where, "not a declared audience"))
            if interval <= timedelta(0):
                problems.append(Problem(where, "give a duration above zero"))
    return problems


_FILE = SectionedPolicy(
    what="audience policy", setting="BLASTWALL_AUDIENCE_POLICY", sections="audiences, cadence"
)


def load_audiences(path: Path | None = None) -> AudiencePolicy:
    """The default policy, with the sections of the file at `path` (if any) replacing the
    default ones; InvalidInput listing every problem when the result does not validate."""
    return _FILE.load(AudiencePolicy, DEFAULT_PATH, path, _check)


@lru_cache(maxsize=4)
def _cached(path: Path | None, mtime: float | None) -> AudiencePolicy:
    return load_audiences(path)


def current_audiences(path: Path | None) -> AudiencePolicy:
    """The policy at `path` (None: the defaults), read again when the file changes."""
    mtime = path.stat().st_mtime if path is not None and path.exists() else None
    return _cached(path, mtime)
