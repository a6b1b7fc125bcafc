"""The acceptance table of deadlines, each computed by hand from the legal text.

Hours are elapsed hours (across a change of clocks); days follow Regulation 1182/71 (the
event's day not counted, the period ending at the end of its last day, moved to the end of
the next working day when that is a Saturday, Sunday or public holiday, the earlier reading
shown first); business days skip weekends and the declared calendar's holidays."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from blastwall.obligations.clocks import Calendar, Period, Unit, due, earliest

BERLIN = ZoneInfo("Europe/Berlin")
BRUSSELS = ZoneInfo("Europe/Brussels")
NEW_YORK = ZoneInfo("America/New_York")
DE, BE, US = Calendar("DE"), Calendar("BE"), Calendar("US")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


CASES = [
    pytest.param(
        # GDPR Art. 33(1): Friday 10:00 CET + 72 h, across a weekend and the change to
        # summer time on Sunday 29 March: Monday 11:00 CEST, 09:00 UTC.
        "2026-03-27T10:00:00+01:00",
        Period(72, Unit.hours),
        BERLIN,
        [DE],
        "2026-03-30T09:00:00+00:00",
        [],
        id="gdpr-72h-over-a-weekend",
    ),
    pytest.param(
        # SEC 8-K Item 1.05: materiality determined Wednesday 25 November 2026; Thursday is
        # Thanksgiving; Fri 27 (1), Mon 30 (2), Tue 1 Dec (3), Wed 2 Dec (4).
        "2026-11-25T14:00:00-05:00",
        Period(4, Unit.business_days),
        NEW_YORK,
        [US],
        "2026-12-02T23:59:59-05:00",
        [],
        id="sec-four-business-days-across-thanksgiving",
    ),
    pytest.param(
        # NIS2 Art. 23(4)(a): early warning 24 h after awareness (Tuesday 10:00 CEST).
        "2026-06-09T10:00:00+02:00",
        Period(24, Unit.hours),
        BRUSSELS,
        [BE],
        "2026-06-10T08:00:00+00:00",
        [],
        id="nis2-early-warning-24h",
    ),
    pytest.param(
        # NIS2 Art. 23(4)(b): incident notification 72 h after awareness.
        "2026-06-09T10:00:00+02:00",
        Period(72, Unit.hours),
        BRUSSELS,
        [BE],
        "2026-06-12T08:00:00+00:00",
        [],
        id="nis2-notification-72h",
    ),
    pytest.param(
        # NIS2 Art. 23(4)(d): final report one month after the notification (sent Thursday
        # 11 June): Saturday 11 July ends it on the strict reading; Art. 3(4) of 1182/71
        # moves it to the end of Monday 13 July.
        "2026-06-11T17:00:00+02:00",
        Period(1, Unit.months),
        BRUSSELS,
        [BE],
        "2026-07-11T23:59:59+02:00",
        ["2026-07-13T23:59:59+02:00"],
        id="nis2-final-report-one-month",
    ),
    pytest.param(
        # AI Act Art. 73(2): aware Saturday 3 October 2026; day 1 is Sunday 4 October, day
        # 15 Sunday 18 October; Art. 3(4) moves the end to Monday 19 October.
        "2026-10-03T11:00:00+02:00",
        Period(15, Unit.days),
        BERLIN,
        [DE],
        "2026-10-18T23:59:59+02:00",
        ["2026-10-19T23:59:59+02:00"],
        id="ai-act-15-days-ending-on-a-sunday",
    ),
    pytest.param(
        # AI Act Art. 73(3): aware Wednesday 23 December 15:00; day 2 is Christmas Day
        # (Friday); Saturday and Sunday follow; the next working day is Monday 28 December.
        "2026-12-23T15:00:00+01:00",
        Period(2, Unit.days),
        BERLIN,
        [DE],
        "2026-12-25T23:59:59+01:00",
        ["2026-12-28T23:59:59+01:00"],
        id="ai-act-2-days-into-christmas",
    ),
    pytest.param(
        # AI Act Art. 73(4): death; aware Monday 1 June 09:00; day 10 is Thursday 11 June,
        # a working day in Germany: one deadline.
        "2026-06-01T09:00:00+02:00",
        Period(10, Unit.days),
        BERLIN,
        [DE],
        "2026-06-11T23:59:59+02:00",
        [],
        id="ai-act-10-days-death",
    ),
]


@pytest.mark.parametrize(("anchor", "period", "tz", "calendars", "expected", "others"), CASES)
def test_deadlines(
    anchor: str,
    period: Period,
    tz: ZoneInfo,
    calendars: list[Calendar],
    expected: str,
    others: list[str],
) -> None:
    clock = due(utc(anchor), period, tz=tz, calendars=calendars)
    assert clock.deadline.at == utc(expected)
    assert [d.at for d in clock.alternatives] == [utc(o) for o in others]


def test_dora_24h_from_awareness_comes_before_4h_from_classification() -> None:
    """DORA Art. 19 with RTS 2025/301: the initial notification is due 4 h after the
    classification as major and no later than 24 h after awareness. Aware Monday 09:00
    UTC, classified Tuesday 07:00 UTC: 07:00 + 4 h = 11:00, but 09:00 + 24 h = 09:00."""
    aware, classified = utc("2026-05-04T09:00:00+00:00"), utc("2026-05-05T07:00:00+00:00")
    tz = ZoneInfo("Europe/Paris")
    clock = earliest(
        [
            due(classified, Period(4, Unit.hours), tz=tz).deadline,
            due(aware, Period(24, Unit.hours), tz=tz).deadline,
        ]
    )
    assert clock.deadline.at == utc("2026-05-05T09:00:00+00:00")
    assert [d.at for d in clock.alternatives] == [utc("2026-05-05T11:00:00+00:00")]


def test_a_relief_to_noon_of_the_next_working_day_is_shown_beside() -> None:
    """A deadline on a Saturday with a noon relief: Saturday's stays the one shown."""
    clock = due(
        utc("2026-07-09T12:00:00+02:00"),
        Period(48, Unit.hours),
        tz=BRUSSELS,
        calendars=[BE],
        relief_until=time(12, 0),
    )
    assert clock.deadline.at == utc("2026-07-11T10:00:00+00:00")
    assert [d.at for d in clock.alternatives] == [utc("2026-07-13T12:00:00+02:00")]


def test_business_days_need_a_calendar_and_anchors_a_zone() -> None:
    with pytest.raises(ValueError, match="calendar"):
        due(utc("2026-11-25T14:00:00-05:00"), Period(4, Unit.business_days), tz=NEW_YORK)
    with pytest.raises(ValueError, match="time zone"):
        due(datetime(2026, 1, 1), Period(1, Unit.hours), tz=NEW_YORK)


def test_unknown_calendars_are_named() -> None:
    assert Calendar.check("DE-BY") is None
    assert "no holiday calendar 'XX'" in (Calendar.check("XX") or "")
