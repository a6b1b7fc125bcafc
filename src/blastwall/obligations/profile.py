"""The organisation profile, `organisation.yaml` beside the inventory: the legal entities, their
jurisdictions, sectors and roles (which decide the regimes that apply), the authorities and
contacts, the holiday calendars and time zone clocks are counted in, the organisation's own
rules (contractual notification duties) and the shipped rules it disables.

It is validated like the inventory: every problem with its file, line and field."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from blastwall.errors import InvalidInput, Problem, field_path
from blastwall.obligations.clocks import Calendar
from blastwall.obligations.rules import Rule

__all__ = [
    "PROFILE_NAMES",
    "Authority",
    "ContactPoint",
    "Entity",
    "OrgRole",
    "OrganisationSpec",
    "find_profile",
    "load_profile",
    "parse_profile",
]

PROFILE_NAMES = ("organisation.yaml", "organisation.yml")
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrgRole(StrEnum):
    """Roles of a legal entity that decide which regimes apply."""

    ai_act_provider = "ai_act_provider"
    ai_act_deployer = "ai_act_deployer"
    gdpr_controller = "gdpr_controller"
    gdpr_processor = "gdpr_processor"
    nis2_essential = "nis2_essential"
    nis2_important = "nis2_important"
    dora_financial_entity = "dora_financial_entity"
    cra_manufacturer = "cra_manufacturer"
    sec_registrant = "sec_registrant"
    nydfs_covered_entity = "nydfs_covered_entity"
    frontier_developer = "frontier_developer"
    colorado_developer = "colorado_developer"
    colorado_deployer = "colorado_deployer"


def _calendars(value: list[str]) -> list[str]:
    for code in value:
        wrong = Calendar.check(code)
        if wrong:
            raise ValueError(wrong)
    return value


def _zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"no time zone '{value}'; use an IANA name such as Europe/Berlin"
            ) from exc
    return value


class Entity(Strict):
    name: Text
    jurisdictions: list[Text] = Field(default_factory=list)
    sectors: list[Text] = Field(default_factory=list)
    roles: list[OrgRole] = Field(default_factory=list)
    lead_supervisory_authority: str | None = None


class Authority(Strict):
    """Where a regime's reports go, and the calendar its days are counted in."""

    regime: Text
    name: Text
    jurisdiction: str | None = None
    contact: str | None = None
    timezone: str | None = None
    holidays: list[str] = Field(default_factory=list)

    _zone = field_validator("timezone")(_zone)
    _calendars = field_validator("holidays")(_calendars)


class ContactPoint(Strict):
    role: Text
    name: Text
    email: str | None = None
    phone: str | None = None


class OrganisationSpec(Strict):
    organisation: Text
    timezone: str = "UTC"
    holidays: list[str] = Field(default_factory=list)
    entities: list[Entity] = Field(min_length=1)
    authorities: list[Authority] = Field(default_factory=list)
    contacts: list[ContactPoint] = Field(default_factory=list)
    rules: list[Rule] = Field(
        default_factory=list,
        description="The organisation's own rules (contractual duties); one with a shipped "
        "rule's id replaces it.",
    )
    disabled_rules: list[str] = Field(default_factory=list)
    reminder_channels: list[str] = Field(default_factory=list)

    _zone = field_validator("timezone")(_zone)
    _calendars = field_validator("holidays")(_calendars)

    def roles(self) -> set[str]:
        return {role.value for entity in self.entities for role in entity.roles}

    def authority(self, regime: str) -> Authority | None:
        return next((a for a in self.authorities if a.regime == regime), None)

    def contact(self) -> ContactPoint | None:
        return self.contacts[0] if self.contacts else None


def _line_of(node: yaml.Node, loc: tuple[int | str, ...]) -> int:
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == str(part)), None)
            if found is None:
                return line
            node = found
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def parse_profile(text: str, filename: str) -> OrganisationSpec:
    """Validate an organisation profile; raise InvalidInput with each problem's file, line
    and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document: Any = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InvalidInput(
            "The organisation profile is not valid YAML; nothing was applied.",
            [Problem(filename, f"not valid YAML: {exc.problem}", mark.line + 1 if mark else None)],
        ) from exc
    if node is None or not isinstance(document, dict):
        raise InvalidInput(
            "The organisation profile must be one mapping; nothing was applied.",
            [Problem(filename, "expected a mapping with organisation, entities, ...", 1)],
        )
    try:
        return OrganisationSpec.model_validate(document)
    except ValidationError as exc:
        problems = [
            Problem(
                f"{filename}: {field_path(tuple(e['loc'])) or '(document)'}",
                e["msg"],
                _line_of(node, tuple(e["loc"])),
            )
            for e in exc.errors()
        ]
        raise InvalidInput(
            f"The organisation profile has {len(problems)} problem(s); nothing was applied. "
            "Fix each one and apply again.",
            problems,
        ) from exc


def find_profile(path: Path) -> Path | None:
    """The organisation profile in a folder given to `inventory apply`, or beside a file."""
    folder = path if path.is_dir() else path.parent
    return next((folder / n for n in PROFILE_NAMES if (folder / n).is_file()), None)


def load_profile(path: Path) -> OrganisationSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "The organisation profile cannot be read.", [Problem(str(path), str(exc))]
        ) from exc
    return parse_profile(text, str(path))
