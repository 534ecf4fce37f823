"""Deadlines of the closed loop: each category's limit per stage, and when a stage falls due.

A stage's limit runs from when the report entered it: reported (to be accepted, 立案), accepted
(to be dispatched, 派遣), dispatched (to be taken up), in_progress (to be resolved, 处置),
returned (to be dispatched again), resolved (to be verified, 核查). Entering a stage again (a
rework sends resolved back to in_progress) starts its whole limit again; closed states have
none. The taxonomy gives the limits, `reports.time_limits` overrides them per category and
stage, and `worktime` says what working time is. `due_at` is stored on the report when it
enters a stage, so overdue is `due_at < now()` in SQL and no calendar is needed there; a
change of the settings applies to stages entered after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from geo.reports import taxonomy
from geo.settings import ReportSettings, WorkTimeSettings
from geo.worktime import FIRST_YEAR, LAST_YEAR, Calendar, Limit, Unit

# The built-in limits, parsed once: a malformed taxonomy row fails at import, not in the loop.
DEFAULTS: dict[tuple[str, str], dict[str, Limit]] = {
    key: {stage: Limit.parse(text) for stage, text in taxonomy.stage_limits(*key).items()}
    for key in taxonomy.CATEGORY_BY_CODE
}
# Unit names as the standard writes them (1 工作日, 5 工作时) and in English, singular/plural.
_ZH = {
    Unit.WORKING_HOURS: "工作时",
    Unit.WORKING_DAYS: "工作日",
    Unit.CALENDAR_HOURS: "小时",
    Unit.CALENDAR_DAYS: "自然日",
}
_EN = {
    Unit.WORKING_HOURS: ("working hour", "working hours"),
    Unit.WORKING_DAYS: ("working day", "working days"),
    Unit.CALENDAR_HOURS: ("hour", "hours"),
    Unit.CALENDAR_DAYS: ("calendar day", "calendar days"),
}


def limits_for(theme: str, category: str, rules: ReportSettings) -> dict[str, Limit]:
    """Return the limit of each open stage of a category: settings over the taxonomy."""
    own = rules.time_limits.get(category, {})
    return {**DEFAULTS[(theme, category)], **{s: Limit.parse(t) for s, t in own.items()}}


def limit_for(theme: str, category: str, stage: str, rules: ReportSettings) -> Limit | None:
    """Return the limit of `stage` for a category; None for a stage without one (closed)."""
    return limits_for(theme, category, rules).get(str(stage))


def calendar(worktime: WorkTimeSettings) -> Calendar:
    """Return the working-time calendar the settings describe (built once per settings)."""
    return _calendar(
        worktime.timezone,
        tuple((a, b) for a, b in worktime.hours),
        frozenset(worktime.extra_holidays),
        frozenset(worktime.extra_workdays),
    )


@lru_cache(maxsize=16)
def _calendar(
    zone: str,
    hours: tuple[tuple[str, str], ...],
    extra_holidays: frozenset[date],
    extra_workdays: frozenset[date],
) -> Calendar:
    return Calendar.of(zone, hours, extra_holidays, extra_workdays)


def due_at(stage_started_at: datetime, limit: Limit, cal: Calendar) -> datetime:
    """Return when a stage that started at `stage_started_at` falls due (aware, cal's zone)."""
    return cal.add(stage_started_at, limit)


def due_at_for(
    theme: str,
    category: str,
    stage: str,
    started_at: datetime,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
) -> datetime | None:
    """Return when a report of this category that entered `stage` at `started_at` falls due;
    None when the stage has no limit (verified, rejected, duplicate)."""
    limit = limit_for(theme, category, stage, rules)
    return None if limit is None else due_at(started_at, limit, calendar(worktime))


def time_left(due: datetime, now: datetime, limit: Limit, cal: Calendar) -> timedelta:
    """Return the time left until `due` in the limit's kind of time (office time for working
    units); negative once overdue, by as much as it is over."""
    if limit.working:
        return cal.working_time_between(now, due)
    return due.astimezone(UTC) - now.astimezone(UTC)


def time_left_for(
    theme: str,
    category: str,
    stage: str,
    due: datetime | None,
    now: datetime,
    rules: ReportSettings,
    worktime: WorkTimeSettings,
) -> timedelta | None:
    """Return the clock of a report's current stage (time_left); None without a deadline."""
    limit = limit_for(theme, category, stage, rules)
    if limit is None or due is None:
        return None
    return time_left(due, now, limit, calendar(worktime))


def limit_as_dict(limit: Limit) -> dict:
    """Return `{"amount": 5, "unit": "working_hours", "text": "5wh", "zh": …, "en": …}`."""
    amount = int(limit.amount) if limit.amount.is_integer() else limit.amount
    en = _EN[limit.unit][0 if amount == 1 else 1]
    return {
        "amount": amount,
        "unit": str(limit.unit),
        "text": str(limit),
        "zh": f"{limit.amount:g} {_ZH[limit.unit]}",
        "en": f"{limit.amount:g} {en}",
    }


def limits_as_dict(rules: ReportSettings) -> dict[tuple[str, str], dict[str, dict]]:
    """Return, per (theme, category), each open stage's limit in force as JSON-ready data."""
    return {
        key: {stage: limit_as_dict(limit) for stage, limit in limits_for(*key, rules).items()}
        for key in taxonomy.CATEGORY_BY_CODE
    }


def worktime_as_dict(worktime: WorkTimeSettings) -> dict:
    """Return the working time in force: zone, office hours, local days, years the national
    calendar covers (outside them: Monday to Friday plus the local days)."""
    return {
        "timezone": worktime.timezone,
        "hours": [list(p) for p in worktime.hours],
        "extra_holidays": _iso(worktime.extra_holidays),
        "extra_workdays": _iso(worktime.extra_workdays),
        "calendar_years": [FIRST_YEAR, LAST_YEAR],
    }


def _iso(days: Iterable[date]) -> list[str]:
    return [d.isoformat() for d in sorted(days)]
