"""Rule packs: versioned YAML files shipped in `obligations/packs/`, one per regime, each rule
with its citation and official link, the conditions that raise it (incident facts, system
attributes, the organisation's roles), the anchors its clocks run from, the deadlines, the
contents a report must carry and its effective dates. What could not be confirmed from the
official text is said in a rule's `verify`.

An organisation extends the packs with rules of its own (contractual duties) and replaces or
disables a shipped rule by its id (`organisation.yaml`, `obligations.profile`). An incident
is judged by the rules in force at its anchor time (`in_force`)."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from blastwall.obligations.clocks import Period, Unit

__all__ = [
    "Anchor",
    "Condition",
    "Content",
    "DeadlineSpec",
    "Limit",
    "Pack",
    "Rule",
    "SubmissionKind",
    "in_force",
    "shipped_packs",
]

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Anchor(StrEnum):
    """The moments a clock runs from, each a timeline fact with its time and author."""

    awareness = "awareness"
    classified_major = "classified_major"
    causal_link = "causal_link"
    materiality_determined = "materiality_determined"
    incident_determined = "incident_determined"
    corrective_measure_available = "corrective_measure_available"


class SubmissionKind(StrEnum):
    initial = "initial"
    intermediate = "intermediate"
    final = "final"
    amended = "amended"


class Limit(Strict):
    """One period from one moment: an anchor, or the submission of an earlier report
    (`submission:initial`, `submission:intermediate`)."""

    from_: Annotated[str, Field(alias="from", pattern=r"^[a-z_]+(:[a-z_]+)?$")]
    hours: int | None = Field(default=None, ge=1, le=24 * 400)
    days: int | None = Field(default=None, ge=1, le=400)
    business_days: int | None = Field(default=None, ge=1, le=400)
    months: int | None = Field(default=None, ge=1, le=24)

    @model_validator(mode="after")
    def _one_period(self) -> Limit:
        given = [u for u in Unit if getattr(self, u.value) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours, days, business_days, months")
        kind, _, rest = self.from_.partition(":")
        if kind == "submission":
            SubmissionKind(rest)
        elif rest or kind not in Anchor.__members__:
            raise ValueError(
                f"'{self.from_}' is no anchor: use one of {', '.join(Anchor)} or "
                "submission:<initial|intermediate|final>"
            )
        return self

    @property
    def period(self) -> Period:
        unit = next(u for u in Unit if getattr(self, u.value) is not None)
        return Period(getattr(self, unit.value), unit)


class DeadlineSpec(Strict):
    """A report and when it is due: the earliest of its limits whose moments are known.
    No limits: the text sets no period ("immediately", "without undue delay")."""

    name: Text
    submission: SubmissionKind
    article: Text
    limits: list[Limit] = Field(default_factory=list)
    note: str = ""


class Condition(Strict):
    """One condition: an incident fact, an attribute of one of the incident's systems, or a
    role of the organisation, compared with `equals`."""

    fact: str | None = None
    system: str | None = None
    org: str | None = None
    equals: Any = True

    @model_validator(mode="after")
    def _one_subject(self) -> Condition:
        if sum(x is not None for x in (self.fact, self.system, self.org)) != 1:
            raise ValueError("give exactly one of fact, system, org")
        return self

    def __str__(self) -> str:
        subject = (
            f"fact {self.fact}"
            if self.fact
            else (f"system {self.system}" if self.system else f"organisation {self.org}")
        )
        return f"{subject} = {self.equals!r}" if self.equals is not True else subject


class Content(Strict):
    """An item a report must carry; `source` names what the draft fills it from."""

    key: RuleId
    label: Text
    article: str = ""
    source: str = ""


class Rule(Strict):
    id: RuleId
    title: Text
    regime: Text = ""
    article: Text
    link: Text
    effective_from: date
    effective_until: date | None = None
    counting: Annotated[str, StringConstraints(pattern=r"^(eu|national|us)$")] = "eu"
    all: list[Condition] = Field(default_factory=list)
    any: list[Condition] = Field(default_factory=list)
    rule_out: list[Text] = Field(default_factory=list)
    deadlines: list[DeadlineSpec] = Field(min_length=1)
    contents: list[Content] = Field(default_factory=list)
    preliminary_allowed: bool = False
    day_ends: time | None = None
    relief_until: time | None = None
    ai_act_serious_incident: bool = False
    verify: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something_to_match(self) -> Rule:
        if not self.all and not self.any:
            raise ValueError("a rule needs conditions under `all` or `any`")
        return self


class Pack(Strict):
    pack: RuleId
    version: Text
    regime: Text
    instrument: Text
    link: Text
    rules: list[Rule]

    @model_validator(mode="after")
    def _regime_on_rules(self) -> Pack:
        rules = [
            r if r.regime else r.model_copy(update={"regime": self.regime}) for r in self.rules
        ]
        object.__setattr__(self, "rules", rules)
        return self


def load_pack(data: dict[str, Any]) -> Pack:
    return Pack.model_validate(data)


@lru_cache(maxsize=1)
def shipped_packs() -> tuple[Pack, ...]:
    """The rule packs shipped with the product, by file name."""
    folder = resources.files("blastwall.obligations") / "packs"
    found = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            found.append(load_pack(yaml.safe_load(item.read_text(encoding="utf-8"))))
    return tuple(found)


def in_force(rules: list[Rule], at: datetime) -> list[Rule]:
    """The rules in force at `at` (a version per id: the one whose dates include it)."""
    day = at.date()
    return [
        r
        for r in rules
        if r.effective_from <= day and (r.effective_until is None or day < r.effective_until)
    ]
