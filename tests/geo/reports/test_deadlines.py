"""Each category's limits per stage, with units, and the due times the loop stores."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from geo.reports import deadlines, taxonomy
from geo.settings import ReportSettings, Settings, WorkTimeSettings
from geo.vocabulary import CLOSED_STATUSES, OPEN_STATUSES
from geo.worktime import Limit, Unit

SH = ZoneInfo("Asia/Shanghai")
RULES = ReportSettings()
RW = (RULES, WorkTimeSettings())
STAGES = [str(s) for s in OPEN_STATUSES]
# Emergencies: their clocks run through nights, weekends and holidays.
URGENT = {
    ("flood", "embankment"),
    ("flood", "river_bank"),
    ("flood", "relocation_needed"),
    ("road_safety", "broken_bridge"),
    ("fire", "blocked_exit"),
    ("gas", "gas_leak"),
    ("gas", "pipeline_damage"),
    ("elderly", "health_emergency"),
    ("stability", "mass_gathering"),
}


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SH)


def test_every_category_has_a_limit_for_each_open_stage():
    assert set(deadlines.DEFAULTS) == set(taxonomy.CATEGORY_BY_CODE)
    for key, limits in deadlines.DEFAULTS.items():
        assert list(limits) == STAGES, key


def test_urgent_categories_count_calendar_hours_in_every_stage():
    for key in URGENT:
        units = {limit.unit for limit in deadlines.DEFAULTS[key].values()}
        assert units == {Unit.CALENDAR_HOURS}, key
    gas_leak = deadlines.DEFAULTS[("gas", "gas_leak")]
    assert gas_leak["reported"] == Limit(0.25, Unit.CALENDAR_HOURS)
    assert gas_leak["in_progress"] == Limit(4, Unit.CALENDAR_HOURS)


def test_the_taxonomy_uses_the_units_of_the_standard():
    used = {limit.unit for limits in deadlines.DEFAULTS.values() for limit in limits.values()}
    assert used == set(Unit)
    parking = deadlines.DEFAULTS[("road_safety", "illegal_parking")]
    assert parking["in_progress"] == Limit(5, Unit.WORKING_HOURS)  # as 道路不洁 5 工作时
    assert deadlines.DEFAULTS[("dispute", "neighbour")]["in_progress"] == Limit(
        15, Unit.CALENDAR_DAYS
    )
    # Outside emergencies and mediation (自然日), the clocks wait for office hours.
    for key, limits in deadlines.DEFAULTS.items():
        if key[0] in ("road_safety", "gas", "elderly") and key not in URGENT:
            assert all(limit.working for limit in limits.values()), key


def test_settings_override_one_stage_and_keep_the_others():
    rules = ReportSettings(time_limits={"gas_leak": {"in_progress": "2h", "resolved": "1wd"}})
    limits = deadlines.limits_for("gas", "gas_leak", rules)
    assert limits["in_progress"] == Limit(2, Unit.CALENDAR_HOURS)
    assert limits["resolved"] == Limit(1, Unit.WORKING_DAYS)
    assert limits["reported"] == deadlines.DEFAULTS[("gas", "gas_leak")]["reported"]
    # Another category of the same theme keeps its own.
    assert (
        deadlines.limits_for("gas", "pipeline_damage", rules)
        == (deadlines.DEFAULTS[("gas", "pipeline_damage")])
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"gas_leak": {"verified": "2h"}}, "names verified: limits are set for the open stages"),
        ({"gas_leak": {"in_progress": "2 hours"}}, "'2 hours' is not a time limit"),
        ({"gas_leak": {"in_progress": "0h"}}, "more than 0"),
        ({"land": {"in_progress": "400d"}}, "at most 366"),
    ],
)
def test_settings_refuse_limits_that_cannot_be_counted(limits, message):
    with pytest.raises(ValidationError, match=message):
        ReportSettings(time_limits=limits)


def test_limits_from_the_environment(monkeypatch):
    monkeypatch.setenv("RISKGRID_REPORTS__TIME_LIMITS", '{"gas_leak": {"in_progress": "1.5h"}}')
    rules = Settings().reports
    assert deadlines.limit_for("gas", "gas_leak", "in_progress", rules) == Limit(
        1.5, Unit.CALENDAR_HOURS
    )


def test_a_gas_leak_reported_on_national_day_night_is_due_in_calendar_time():
    # Dispatched at 22:00 on 1 October 2024, a holiday: 30 minutes to take it up, 4 h to fix.
    started = at(2024, 10, 1, 22, 0)
    assert deadlines.due_at_for("gas", "gas_leak", "dispatched", started, *RW) == (
        at(2024, 10, 1, 22, 30)
    )
    assert deadlines.due_at_for("gas", "gas_leak", "in_progress", started, *RW) == (
        at(2024, 10, 2, 2, 0)
    )


def test_a_parking_report_waits_for_office_hours_and_the_make_up_sunday():
    # 5 working hours from Friday 27 Sept 16:00: 1.5 h on Friday, 3.5 h on Sunday 29 Sept.
    due = deadlines.due_at_for(
        "road_safety", "illegal_parking", "in_progress", at(2024, 9, 27, 16, 0), *RW
    )
    assert due == at(2024, 9, 29, 12, 0)


def test_a_stage_entered_outside_office_hours_starts_at_the_next_working_minute():
    # Accepted at 20:00 on Monday 30 Sept 2024: 2 working hours to dispatch run on 8 October.
    due = deadlines.due_at_for(
        "road_safety", "road_damage", "accepted", at(2024, 9, 30, 20, 0), *RW
    )
    assert due == at(2024, 10, 8, 10, 30)


def test_working_days_of_a_category_over_spring_festival_2025():
    # Verifying a blackspot fix (5 working days) resolved on Friday 24 January 2025 at 10:00:
    # the make-up Sunday 26 Jan, 27 Jan, then 5, 6 and 7 Feb after the holiday, 10:00 on the 7th.
    due = deadlines.due_at_for("road_safety", "blackspot", "resolved", at(2025, 1, 24, 10, 0), *RW)
    assert due == at(2025, 2, 7, 10, 0)


def test_local_days_from_settings_move_the_deadline():
    local = WorkTimeSettings(extra_holidays=[date(2024, 9, 29)])
    started = at(2024, 9, 27, 17, 0)  # 4 working hours to accept
    assert deadlines.due_at_for("elderly", "disabled_care", "reported", started, *RW) == (
        at(2024, 9, 29, 12, 0)  # 4 wh: 0.5 h on Friday, 3.5 h on the make-up Sunday
    )
    assert deadlines.due_at_for("elderly", "disabled_care", "reported", started, RULES, local) == (
        at(2024, 9, 30, 12, 0)  # the Sunday made a local holiday: Monday
    )


@pytest.mark.parametrize("stage", [str(s) for s in CLOSED_STATUSES])
def test_closed_states_have_no_deadline(stage):
    started = at(2024, 9, 27, 17, 0)
    assert deadlines.due_at_for("gas", "gas_leak", stage, started, *RW) is None
    later = at(2024, 9, 28, 0, 0)
    assert deadlines.time_left_for("gas", "gas_leak", stage, None, later, *RW) is None


def test_the_clock_counts_office_time_for_working_limits():
    due = at(2024, 9, 29, 12, 0)  # the parking report above
    left = deadlines.time_left_for(
        "road_safety", "illegal_parking", "in_progress", due, at(2024, 9, 27, 17, 30), *RW
    )
    assert left == timedelta(hours=3, minutes=30)  # the weekend night does not count
    over = deadlines.time_left_for(
        "road_safety", "illegal_parking", "in_progress", due, at(2024, 9, 30, 8, 30), *RW
    )
    assert over == -timedelta(hours=4)  # overdue by Sunday afternoon's office time


def test_the_clock_counts_elapsed_time_for_calendar_limits():
    due = at(2024, 10, 2, 2, 0)
    left = deadlines.time_left_for(
        "gas", "gas_leak", "in_progress", due, at(2024, 10, 1, 23, 15), *RW
    )
    assert left == timedelta(hours=2, minutes=45)


def test_the_themes_listing_gives_each_limit_with_its_unit():
    rules = ReportSettings(time_limits={"gas_leak": {"in_progress": "2h"}})
    themes = taxonomy.as_dict(rules.departments, deadlines.limits_as_dict(rules))
    categories = {(t["code"], c["code"]): c for t in themes for c in t["categories"]}
    parking = categories[("road_safety", "illegal_parking")]["limits"]
    assert list(parking) == STAGES
    assert parking["in_progress"] == {
        "amount": 5,
        "unit": "working_hours",
        "text": "5wh",
        "zh": "5 工作时",
        "en": "5 working hours",
    }
    assert categories[("gas", "gas_leak")]["limits"]["reported"] == {
        "amount": 0.25,
        "unit": "calendar_hours",
        "text": "0.25h",
        "zh": "0.25 小时",
        "en": "0.25 hours",
    }
    assert categories[("gas", "gas_leak")]["limits"]["in_progress"]["amount"] == 2
    assert categories[("fire", "blocked_exit")]["limits"]["resolved"]["en"] == "24 hours"
    assert categories[("road_safety", "road_damage")]["limits"]["resolved"]["en"] == (
        "2 working days"
    )
    assert categories[("dispute", "family")]["limits"]["reported"]["en"] == "1 working day"


def test_the_working_time_in_force_is_listed():
    worktime = WorkTimeSettings(extra_holidays=[date(2027, 1, 1)])
    assert deadlines.worktime_as_dict(worktime) == {
        "timezone": "Asia/Shanghai",
        "hours": [["08:30", "12:00"], ["13:30", "17:30"]],
        "extra_holidays": ["2027-01-01"],
        "extra_workdays": [],
        "calendar_years": [2004, 2026],
    }


def test_the_calendar_is_built_once_per_settings():
    a = deadlines.calendar(WorkTimeSettings(extra_workdays=[date(2024, 10, 5)]))
    b = deadlines.calendar(WorkTimeSettings(extra_workdays=[date(2024, 10, 5)]))
    assert a is b and a.is_working_day(date(2024, 10, 5))
    assert deadlines.calendar(WorkTimeSettings()) is not a
