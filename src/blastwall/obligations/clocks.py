"""Deadlines computed the way the law counts time.

- Hours are hours: an anchor plus so many elapsed hours, whatever the day or the clock change.
- Days and months where EU law applies follow Regulation (EEC, Euratom) No 1182/71: the day
  of the event is not counted (Art. 3(1)); the period ends with the expiry of the last hour of
  its last day (Art. 3(2)(b)); a period in months ends on the day of the last month with the
  same date as the event, or the month's last day where there is none (Art. 3(2)(c)); and
  when the last day is a public holiday, a Saturday or a Sunday, the period ends with the
  expiry of the last hour of the next working day (Art. 3(4)).
- Business days skip Saturdays, Sundays and the public holidays of a declared calendar (the
  `holidays` package): "four business days after" a Wednesday before Thanksgiving is the
  following Wednesday.

Every day boundary is taken in an explicit time zone: the authority's. Where interpretations
differ (which holidays count, whether Art. 3(4) moves the end of the period, a weekend
relief) a clock answers the earliest deadline, with the others beside it.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "Calendar",
    "Clock",
    "Deadline",
    "Period",
    "Unit",
    "due",
    "earliest",
]

END_OF_DAY = time(23, 59, 59)


class Unit(StrEnum):
    hours = "hours"
    days = "days"
    business_days = "business_days"
    months = "months"


@dataclass(frozen=True)
class Period:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        unit = self.unit.value.replace("_", " ")
        return f"{self.amount} {unit[:-1] if self.amount == 1 else unit}"


@lru_cache(maxsize=64)
def _holidays(code: str, year: int) -> holidays.HolidayBase:
    country, _, subdivision = code.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)


@dataclass(frozen=True)
class Calendar:
    """The public holidays of one place: an ISO country code, with a subdivision after a
    hyphen where its holidays differ (`DE`, `DE-BY`, `IE`, `US`, `US-NY`)."""

    code: str

    def holiday(self, day: date) -> str | None:
        name = _holidays(self.code, day.year).get(day)
        return str(name) if name else None

    def working(self, day: date) -> bool:
        return day.weekday() < 5 and self.holiday(day) is None

    def next_working(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.working(day):
            day += timedelta(days=1)
        return day

    @staticmethod
    def check(code: str) -> str | None:
        """What is wrong with `code` as a calendar, or None."""
        try:
            _holidays(code, 2026)
        except (NotImplementedError, KeyError) as exc:
            return (
                f"no holiday calendar '{code}' ({exc}); use an ISO country code, with a "
                "subdivision after a hyphen (DE, DE-BY, IE, US, US-NY)"
            )
        return None


@dataclass(frozen=True)
class Deadline:
    at: datetime
    basis: str

    def local(self, tz: ZoneInfo) -> datetime:
        return self.at.astimezone(tz)


@dataclass(frozen=True)
class Clock:
    """The earliest deadline, with the later interpretations beside it."""

    deadline: Deadline
    alternatives: tuple[Deadline, ...] = ()


def _end_of(day: date, tz: ZoneInfo, day_ends: time) -> datetime:
    return datetime.combine(day, day_ends, tzinfo=tz)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def earliest(deadlines: Iterable[Deadline]) -> Clock:
    """The earliest of `deadlines` and the others beside it, later ones merged where they
    fall at the same instant (their bases joined)."""
    merged: dict[datetime, list[str]] = {}
    for item in deadlines:
        bases = merged.setdefault(item.at, [])
        if item.basis not in bases:
            bases.append(item.basis)
    ordered = [Deadline(at, "; ".join(bases)) for at, bases in sorted(merged.items())]
    if not ordered:
        raise ValueError("a clock needs at least one deadline")
    return Clock(ordered[0], tuple(ordered[1:]))


def _calendar_period(
    last: date, label: str, tz: ZoneInfo, calendars: Sequence[Calendar], day_ends: time
) -> list[Deadline]:
    found = [Deadline(_end_of(last, tz, day_ends), f"{label}, ending on its last day")]
    for cal in calendars:
        if cal.working(last):
            continue
        moved = cal.next_working(last)
        why = cal.holiday(last) or last.strftime("%A")
        found.append(
            Deadline(
                _end_of(moved, tz, day_ends),
                f"{label}, moved past {why} to the next working day ({cal.code}): "
                "Reg. 1182/71 Art. 3(4)",
            )
        )
    return found


def _business_days(
    start: date, amount: int, tz: ZoneInfo, calendars: Sequence[Calendar], day_ends: time
) -> list[Deadline]:
    found = []
    for cal in calendars:
        day = start
        for _ in range(amount):
            day = cal.next_working(day)
        found.append(
            Deadline(_end_of(day, tz, day_ends), f"{amount} business days ({cal.code} holidays)")
        )
    return found


def _relief(
    clock: Clock, tz: ZoneInfo, calendars: Sequence[Calendar], until: time
) -> list[Deadline]:
    """A weekend and holiday relief: a deadline on a day that is not a working day may be
    met by `until` on the next working day."""
    found = []
    for cal in calendars:
        day = clock.deadline.at.astimezone(tz).date()
        if not cal.working(day):
            found.append(
                Deadline(
                    datetime.combine(cal.next_working(day), until, tzinfo=tz),
                    f"weekend and holiday relief: {until:%H:%M} on the next working day "
                    f"({cal.code})",
                )
            )
    return found


def due(
    anchor: datetime,
    period: Period,
    *,
    tz: ZoneInfo,
    calendars: Sequence[Calendar] = (),
    day_ends: time = END_OF_DAY,
    relief_until: time | None = None,
) -> Clock:
    """When a period of `period` from `anchor` (an aware datetime) ends, with days counted
    in `tz` against `calendars`. `day_ends`: the time a day ends at for the authority (a
    filing cut-off). `relief_until`: a relief that moves a deadline falling on a day off to
    this time of the next working day (shown beside the earliest)."""
    if anchor.tzinfo is None:
        raise ValueError("an anchor needs a time zone")
    start = anchor.astimezone(tz).date()
    if period.unit is Unit.hours:
        deadlines = [Deadline(anchor + timedelta(hours=period.amount), f"{period} elapsed")]
    elif period.unit is Unit.days:
        last = start + timedelta(days=period.amount)
        deadlines = _calendar_period(last, str(period), tz, calendars, day_ends)
    elif period.unit is Unit.months:
        last = _add_months(start, period.amount)
        deadlines = _calendar_period(last, str(period), tz, calendars, day_ends)
    else:
        if not calendars:
            raise ValueError("business days need a holiday calendar")
        deadlines = _business_days(start, period.amount, tz, calendars, day_ends)
    clock = earliest(deadlines)
    if relief_until is not None and calendars:
        clock = earliest(
            [clock.deadline, *clock.alternatives, *_relief(clock, tz, calendars, relief_until)]
        )
    return clock
