"""The containment policy: which roles may apply which controls at which severities without
approval, and who approves the rest. A YAML file; the default ships with Blastwall."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blastwall.auth.roles import Role
from blastwall.errors import PolicyError, field_path
from blastwall.incidents.schemas import Severity
from blastwall.inventory.schemas import Control

DEFAULT_POLICY = "default_policy.yaml"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: Annotated[list[Role], Field(min_length=1)]
    controls: list[Control] | Literal["all"]
    severities: list[Severity] | Literal["all"]

    def covers(self, role: Role, control: Control, severity: Severity) -> bool:
        return (
            role in self.roles
            and (self.controls == "all" or control in self.controls)
            and (self.severities == "all" or severity in self.severities)
        )


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approvers: Annotated[list[Role], Field(min_length=1)]
    preauthorised: list[Rule] = Field(default_factory=list)

    def preauthorised_for(self, role: Role, control: Control, severity: Severity) -> bool:
        return any(rule.covers(role, control, severity) for rule in self.preauthorised)

    def may_approve(self, role: Role) -> bool:
        return role in self.approvers


def parse_policy(text: str, *, source: str) -> Policy:
    """The policy in YAML `text`; PolicyError naming `source` and each wrong field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"The containment policy {source} is not valid YAML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{field_path(e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"The containment policy {source} is not valid: {problems}.") from None


@functools.lru_cache(maxsize=8)
def load_policy(path: Path | None = None) -> Policy:
    """The policy in `path`, or the default policy shipped with Blastwall."""
    if path is None:
        text = resources.files("blastwall.containment").joinpath(DEFAULT_POLICY).read_text()
        return parse_policy(text, source=f"(built-in {DEFAULT_POLICY})")
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(
            f"The containment policy {path} cannot be read ({exc.strerror}); "
            "check BLASTWALL_CONTAINMENT_POLICY."
        ) from None
    return parse_policy(text, source=str(path))
