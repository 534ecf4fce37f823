"""Working time on the Chinese holiday calendar: working days, office hours, limits counted in them.

A day is a working day when settings list it in `extra_workdays`; else not when they list it in
`extra_holidays`; else as the State Council's arrangement says (holidays and make-up working
days, 调休, from `chinesecalendar`); else Monday to Friday. chinesecalendar 1.11 covers
2004-2026: outside its years the arrangement is unknown, so a day there is a working day by
weekday and settings alone, and a warning is logged once per year (enter that year's holidays
and make-up days in settings until the package has them).

Office hours are the same on every working day, make-up Saturdays included. A working-hours
limit counts only office time, starting at the next office minute when it starts outside it;
a working day is one day's office time (7.5 h by default), the 工作日 = N 工作时 rule of digital
city management. Calendar hours are elapsed time; calendar days keep the local clock time.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

log = logging.getLogger("riskgrid.worktime")

# The years chinesecalendar's arrangement covers (1.11: 2004 to 2026).
FIRST_YEAR = min(chinese_calendar.holidays).year
LAST_YEAR = max(chinese_calendar.holidays).year
DAY_MINUTES = 24 * 60
# Office hours shorter than this would let a long working-time limit run for decades.
MIN_DAY = timedelta(hours=1)
# The longest limit per unit, and so the longest walk through the calendar: 2000 working hours
# at the 1 h a day minimum are 2000 working days, 8 years at 250 a year; the walk stops at ten.
MAX_AMOUNT = {"wh": 2000.0, "wd": 366.0, "h": 8784.0, "d": 366.0}
_MAX_WALK_DAYS = 3660


class Unit(StrEnum):
    """What a time limit counts."""

    WORKING_HOURS = "working_hours"  # 工作时
    WORKING_DAYS = "working_days"  # 工作日
    CALENDAR_HOURS = "calendar_hours"  # 小时: nights, weekends and holidays count
    CALENDAR_DAYS = "calendar_days"  # 自然日


SUFFIX = {
    Unit.WORKING_HOURS: "wh",
    Unit.WORKING_DAYS: "wd",
    Unit.CALENDAR_HOURS: "h",
    Unit.CALENDAR_DAYS: "d",
}
_UNIT_BY_SUFFIX = {s: u for u, s in SUFFIX.items()}
_NOTATION = re.compile(r"(\d{1,4}(?:\.\d{1,4})?)(wh|wd|h|d)")
_CLOCK = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")


@dataclass(frozen=True)
class Limit:
    """A time limit: an amount of working or calendar time, written "4wh", "1wd", "2h", "3d"."""

    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        top = MAX_AMOUNT[SUFFIX[self.unit]]
        if not (math.isfinite(self.amount) and 0 < self.amount <= top):
            raise ValueError(f"a limit in {self.unit} must be more than 0 and at most {top:g}")

    @classmethod
    def parse(cls, text: str) -> Limit:
        """Return the limit written `text` ("4wh", "1wd", "0.5h", "30d")."""
        found = _NOTATION.fullmatch(text.strip())
        if found is None:
            raise ValueError(
                f"{text!r} is not a time limit: write an amount and a unit, e.g. '4wh' "
                "(working hours), '1wd' (working days), '2h' (calendar hours), '3d' (calendar days)"
            )
        return cls(float(found[1]), _UNIT_BY_SUFFIX[found[2]])

    def __str__(self) -> str:
        return f"{self.amount:g}{SUFFIX[self.unit]}"

    @property
    def working(self) -> bool:
        """Return whether the limit counts office time only."""
        return self.unit in (Unit.WORKING_HOURS, Unit.WORKING_DAYS)


def parse_zone(name: str) -> ZoneInfo:
    """Return the time zone `name` (an IANA name such as Asia/Shanghai)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name, e.g. Asia/Shanghai"
        ) from None


def parse_hours(hours: Iterable[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    """Return office hours ("08:30", "12:00") as minutes after midnight, checked in order."""
    periods = tuple((_minutes(a), _minutes(b)) for a, b in hours)
    if not periods:
        raise ValueError("office hours need at least one period, e.g. 08:30-12:00")
    previous_end = 0
    for a, b in periods:
        if a >= b:
            raise ValueError(f"office hours {_clock(a)}-{_clock(b)} end before they start")
        if a < previous_end:
            raise ValueError(
                f"office hours {_clock(a)}-{_clock(b)} overlap or precede the period before: "
                "give the periods of a day in order, without overlaps"
            )
        previous_end = b
    if sum(b - a for a, b in periods) < MIN_DAY.total_seconds() // 60:
        raise ValueError("office hours must add up to at least one hour a day")
    return periods


def _minutes(clock: str) -> int:
    found = _CLOCK.fullmatch(clock.strip())
    if found is None or (found[1] == "24" and found[2] != "00"):
        raise ValueError(f"{clock!r} is not a time of day: write HH:MM, 00:00 to 24:00")
    return int(found[1]) * 60 + int(found[2])


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def covers(day: date) -> bool:
    """Return whether chinesecalendar knows the holidays of `day`'s year."""
    return FIRST_YEAR <= day.year <= LAST_YEAR


@cache
def _warn_uncovered(year: int) -> None:
    log.warning(
        "chinesecalendar %s knows holidays for %d-%d only: %d counts Monday to Friday as "
        "working days, plus worktime.extra_holidays and extra_workdays",
        chinese_calendar.__version__,
        FIRST_YEAR,
        LAST_YEAR,
        year,
    )


@dataclass(frozen=True)
class Calendar:
    """Working days and office hours in one time zone; every answer is aware, in that zone."""

    zone: ZoneInfo
    periods: tuple[tuple[int, int], ...]  # office hours, minutes after local midnight
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()

    @classmethod
    def of(
        cls,
        timezone: str = "Asia/Shanghai",
        hours: Iterable[tuple[str, str]] = (("08:30", "12:00"), ("13:30", "17:30")),
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> Calendar:
        """Return the calendar of a zone, its office hours and its local changes."""
        return cls(
            parse_zone(timezone),
            parse_hours(hours),
            frozenset(extra_holidays),
            frozenset(extra_workdays),
        )

    @property
    def day_length(self) -> timedelta:
        """Return the office time of one working day."""
        return timedelta(minutes=sum(b - a for a, b in self.periods))

    def is_working_day(self, day: date) -> bool:
        """Return whether `day` is a working day (settings, then the national arrangement)."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if not covers(day):
            _warn_uncovered(day.year)
            return day.weekday() < 5
        # chinese_calendar.is_workday's own rule, without its per-call scan of every year.
        return day in chinese_calendar.workdays or (
            day.weekday() < 5 and day not in chinese_calendar.holidays
        )

    def add(self, start: datetime, limit: Limit) -> datetime:
        """Return when `limit` runs out if it starts at `start`."""
        if limit.unit == Unit.WORKING_HOURS:
            return self.add_working_hours(start, limit.amount)
        if limit.unit == Unit.WORKING_DAYS:
            return self.add_working_days(start, limit.amount)
        if limit.unit == Unit.CALENDAR_HOURS:
            return self.add_calendar_hours(start, limit.amount)
        return self.add_calendar_days(start, limit.amount)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """Return the first instant by which `hours` of office time have passed since `start`."""
        return self._add_working(start, timedelta(hours=hours))

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """Return the instant `days` working days of office time after `start`."""
        return self._add_working(start, self.day_length * days)

    def add_calendar_hours(self, start: datetime, hours: float) -> datetime:
        """Return the instant `hours` of elapsed time after `start`."""
        return (_utc(start) + timedelta(hours=hours)).astimezone(self.zone)

    def add_calendar_days(self, start: datetime, days: float) -> datetime:
        """Return the same local clock time `days` days after `start` (DST moves the offset)."""
        wall = _utc(start).astimezone(self.zone) + timedelta(days=days)  # wall-clock arithmetic
        return wall.astimezone(UTC).astimezone(self.zone)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Return the office time from `a` to `b`; negative when `b` comes first.

        Only the first and the last day are walked; the whole days between count a working
        day's office time each, from cached counts (a report open for years took 13 ms)."""
        a, b = _utc(a), _utc(b)
        if b < a:
            return -self.working_time_between(b, a)
        first, last = a.astimezone(self.zone).date(), b.astimezone(self.zone).date()
        if (last - first).days < 2:
            return self._office_time(a, b, first, last)
        after_first = datetime.combine(first + _DAY, time(), self.zone).astimezone(UTC)
        last_midnight = datetime.combine(last, time(), self.zone).astimezone(UTC)
        return (
            self._office_time(a, after_first, first, first)
            + self.working_days_between(first + _DAY, last) * self.day_length
            + self._office_time(last_midnight, b, last, last)
        )

    def working_days_between(self, start: date, end: date) -> int:
        """Return how many days d with start <= d < end are working days."""
        if end <= start:
            return 0

        def before(d: date) -> int:  # working days from 1 January of start's year up to d
            years = sum(_working_days_of(self, y)[-1] for y in range(start.year, d.year))
            return years + _working_days_of(self, d.year)[d.timetuple().tm_yday - 1]

        return before(end) - before(start)

    def _office_time(self, a: datetime, b: datetime, first: date, last: date) -> timedelta:
        total = timedelta()
        day = first
        while day <= last:
            for s, e in self._office(day):
                total += max(timedelta(), min(e, b) - max(s, a))
            day += _DAY
        return total

    def _add_working(self, start: datetime, amount: timedelta) -> datetime:
        if amount <= timedelta():
            raise ValueError("a working-time limit must be more than zero")
        t, left = _utc(start), amount
        day = t.astimezone(self.zone).date()
        for _ in range(_MAX_WALK_DAYS):
            for s, e in self._office(day):
                if e <= t:
                    continue
                s = max(s, t)
                if s + left <= e:
                    return (s + left).astimezone(self.zone)
                left -= e - s
            day += timedelta(days=1)
        raise ValueError(f"{amount} of office time does not fit in ten years of this calendar")

    def _office(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        """Yield the office periods of `day` as UTC instants; none on a day off."""
        if not self.is_working_day(day):
            return
        for a, b in self.periods:
            yield self._instant(day, a), self._instant(day, b)

    def _instant(self, day: date, minutes: int) -> datetime:
        day += timedelta(days=minutes // DAY_MINUTES)  # 24:00 is the next midnight
        clock = time(*divmod(minutes % DAY_MINUTES, 60))
        return datetime.combine(day, clock, self.zone).astimezone(UTC)


_DAY = timedelta(days=1)


@cache
def _working_days_of(cal: Calendar, year: int) -> tuple[int, ...]:
    """Return the working days of `year` before each of its days (index: day of the year - 1),
    the year's total last."""
    counts, day = [0], date(year, 1, 1)
    while day.year == year:
        counts.append(counts[-1] + cal.is_working_day(day))
        day += _DAY
    return tuple(counts)


def _utc(moment: datetime) -> datetime:
    # Aware datetimes sharing a zone subtract by wall clock in Python: compute in UTC.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: deadlines need aware times")
    return moment.astimezone(UTC)
