"""Judging a rule against an incident, and running its clocks; no storage here.

A rule matches when every condition under `all` holds and, where it has any, one under
`any`: a fact holds when it is recorded with the value the condition wants (confirmed or
suspected: candidates are raised early), a system attribute when one of the incident's
systems has it, an organisation role when an entity of the profile declares it. Why it
matched names each condition and what satisfied it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from blastwall.obligations.clocks import Calendar, Deadline, Unit, due, earliest
from blastwall.obligations.profile import OrganisationSpec
from blastwall.obligations.rules import Condition, DeadlineSpec, Rule, SubmissionKind
from blastwall.obligations.schemas import ClockOut, DeadlineOut

__all__ = ["Moments", "clocks", "judge", "place_of"]

Facts = Mapping[str, tuple[Any, str]]
Systems = Mapping[str, Mapping[str, Any]]


def _holds(
    condition: Condition, facts: Facts, systems: Systems, roles: set[str]
) -> dict[str, Any] | None:
    if condition.fact is not None:
        found = facts.get(condition.fact)
        if found is None or found[0] != condition.equals:
            return None
        return {"condition": str(condition), "by": f"fact ({found[1]})", "state": found[1]}
    if condition.system is not None:
        having = sorted(
            s for s, attrs in systems.items() if attrs.get(condition.system) == condition.equals
        )
        if not having:
            return None
        return {"condition": str(condition), "by": f"system {', '.join(having)}"}
    if condition.org in roles:
        return {"condition": str(condition), "by": "organisation profile"}
    return None


def judge(
    rule: Rule, *, facts: Facts, systems: Systems, roles: set[str]
) -> list[dict[str, Any]] | None:
    """Why `rule` matches (each condition and what satisfied it), or None."""
    why = []
    for condition in rule.all:
        held = _holds(condition, facts, systems, roles)
        if held is None:
            return None
        why.append(held)
    if rule.any:
        held_any = [h for c in rule.any if (h := _holds(c, facts, systems, roles)) is not None]
        if not held_any:
            return None
        why.extend(held_any)
    return why


@dataclass(frozen=True)
class Moments:
    """What a rule's clocks run from: anchors by kind, and submissions by kind (oldest
    first)."""

    anchors: Mapping[str, datetime]
    submissions: Mapping[SubmissionKind, list[datetime]]

    def of(self, source: str) -> datetime | None:
        kind, _, rest = source.partition(":")
        if kind == "submission":
            sent = self.submissions.get(SubmissionKind(rest), [])
            return sent[-1] if sent else None
        return self.anchors.get(source)


def place_of(rule: Rule, profile: OrganisationSpec | None) -> tuple[ZoneInfo, list[Calendar]]:
    """The time zone and holiday calendars a rule's days are counted in: its regime's
    authority in the profile, else the profile's own, else UTC with no holidays (US federal
    holidays for US rules)."""
    authority = profile.authority(rule.regime) if profile else None
    zone = (authority and authority.timezone) or (profile.timezone if profile else "UTC")
    codes = (authority and authority.holidays) or (profile.holidays if profile else [])
    if not codes and rule.counting == "us":
        codes = ["US"]
    return ZoneInfo(zone), [Calendar(c) for c in codes]


def _shown(at: datetime, basis: str, tz: ZoneInfo) -> DeadlineOut:
    return DeadlineOut(at=at, local=at.astimezone(tz).isoformat(), basis=basis)


def _clock(
    rule: Rule,
    spec: DeadlineSpec,
    moments: Moments,
    tz: ZoneInfo,
    calendars: list[Calendar],
    now: datetime,
) -> ClockOut:
    deadlines, waiting, starts = [], [], []
    for limit in spec.limits:
        start = moments.of(limit.from_)
        if start is None:
            waiting.append(limit.from_)
            continue
        starts.append(start)
        period = limit.period
        counted = calendars if (rule.counting != "us" or period.unit is Unit.business_days) else []
        clock = due(
            start,
            period,
            tz=tz,
            calendars=counted,
            relief_until=rule.relief_until,
            **({"day_ends": rule.day_ends} if rule.day_ends else {}),
        )
        for item in (clock.deadline, *clock.alternatives):
            deadlines.append(Deadline(item.at, f"{item.basis} from {limit.from_}"))
    sent = moments.submissions.get(spec.submission, [])
    submitted = sent[0] if sent else None
    if not deadlines:
        return ClockOut(
            name=spec.name,
            submission=spec.submission.value,
            article=spec.article,
            note=spec.note,
            due=None,
            started_at=None,
            alternatives=[],
            waiting_for=waiting,
            submitted_at=submitted,
            overdue=False,
        )
    found = earliest(deadlines)
    return ClockOut(
        name=spec.name,
        submission=spec.submission.value,
        article=spec.article,
        note=spec.note,
        due=_shown(found.deadline.at, found.deadline.basis, tz),
        started_at=min(starts),
        alternatives=[_shown(d.at, d.basis, tz) for d in found.alternatives],
        waiting_for=waiting,
        submitted_at=submitted,
        overdue=(submitted or now) > found.deadline.at,
    )


def clocks(
    rule: Rule, *, moments: Moments, profile: OrganisationSpec | None, now: datetime
) -> list[ClockOut]:
    """Each report's clock: the earliest deadline of its limits whose moments are known."""
    tz, calendars = place_of(rule, profile)
    return [_clock(rule, spec, moments, tz, calendars, now) for spec in rule.deadlines]
