"""The notification policy: which events are notified, on which channels. A YAML file; the
default ships with Blastwall (`notifications.yaml`), `BLASTWALL_NOTIFICATION_POLICY`
replaces it."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from blastwall.errors import TriggerPolicyError, field_path
from blastwall.incidents.schemas import Severity

__all__ = ["EVENTS", "Trigger", "TriggerPolicy", "load_triggers", "on_call_channel_of"]

DEFAULT_POLICY = "notifications.yaml"
INCIDENT_CHANGES = (
    "opened",
    "escalated",
    "severity_changed",
    "status_changed",
    "containment_applied",
    "containment_breached",
    "resolved",
)
EVENTS = (*INCIDENT_CHANGES, "update_published", "reminder_due")
"""What a trigger may name: the changes of `pipeline.IncidentChanged`, and the updates and
reminders of the updates part."""
_SEVERITY_RANK = {"SEV1": 1, "SEV2": 2, "SEV3": 3, "SEV4": 4}


class Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: list[str] = Field(default_factory=list)
    on_call: bool = False
    audience: bool = False
    min_severity: Severity | None = None

    def admits(self, severity: str | None) -> bool:
        """Whether an incident of `severity` is notified (one of unknown severity is)."""
        if self.min_severity is None or severity not in _SEVERITY_RANK:
            return True
        return _SEVERITY_RANK[severity] <= _SEVERITY_RANK[self.min_severity.value]


class TriggerPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_call_channel: str = "oncall-{team}"
    triggers: dict[str, Trigger] = Field(default_factory=dict)

    @field_validator("triggers")
    @classmethod
    def _known(cls, value: dict[str, Trigger]) -> dict[str, Trigger]:
        unknown = sorted(set(value) - set(EVENTS))
        if unknown:
            raise ValueError(f"unknown events {', '.join(unknown)}; known: {', '.join(EVENTS)}")
        return value

    @field_validator("on_call_channel")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{team}" not in value:
            raise ValueError("must contain {team}, e.g. 'oncall-{team}'")
        return value

    def on_call_channels(self, teams: Iterable[str]) -> list[str]:
        """The channel names of the owning teams' on-call."""
        return [on_call_channel_of(self.on_call_channel, team) for team in teams]


def on_call_channel_of(template: str, team: str) -> str:
    """The name of a team's on-call channel: the team's name in lower case, runs of other
    characters than letters and digits as one '-' ("Payments AI" -> `oncall-payments-ai`)."""
    slug = re.sub(r"[^a-z0-9]+", "-", team.lower()).strip("-") or "team"
    return template.replace("{team}", slug)


def parse_triggers(text: str, *, source: str) -> TriggerPolicy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TriggerPolicyError(
            f"The notification policy {source} is not valid YAML: {exc}"
        ) from None
    try:
        return TriggerPolicy.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{field_path(e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise TriggerPolicyError(
            f"The notification policy {source} is not valid: {problems}. Fix it, or unset "
            "BLASTWALL_NOTIFICATION_POLICY to use the shipped one."
        ) from None


@functools.lru_cache(maxsize=8)
def load_triggers(path: Path | None = None) -> TriggerPolicy:
    """The policy in `path`, or the one shipped with Blastwall."""
    if path is None:
        text = resources.files("blastwall.comms").joinpath(DEFAULT_POLICY).read_text()
        return parse_triggers(text, source=f"(built-in {DEFAULT_POLICY})")
    try:
        text = path.read_text()
    except OSError as exc:
        raise TriggerPolicyError(
            f"The notification policy {path} cannot be read ({exc.strerror}); "
            "check BLASTWALL_NOTIFICATION_POLICY."
        ) from None
    return parse_triggers(text, source=str(path))
