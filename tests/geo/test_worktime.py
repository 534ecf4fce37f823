"""Working time on known dates: National Day 2024, Spring Festival 2025, office hours, settings."""

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from pydantic import ValidationError

from geo import worktime
from geo.settings import WorkTimeSettings
from geo.worktime import Calendar, Limit, Unit

SH = ZoneInfo("Asia/Shanghai")
CAL = Calendar.of()  # the defaults: Asia/Shanghai, 08:30-12:00 and 13:30-17:30


def at(*parts: int, zone: ZoneInfo = SH) -> datetime:
    return datetime(*parts, tzinfo=zone)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2024, 9, 27), True),  # Friday before National Day
        (date(2024, 9, 28), False),  # Saturday
        (date(2024, 9, 29), True),  # Sunday, make-up working day (调休)
        *((date(2024, 10, d), False) for d in range(1, 8)),  # National Day 1-7 October
        (date(2024, 10, 12), True),  # Saturday, make-up working day
        (date(2024, 10, 13), False),
        (date(2025, 1, 26), True),  # Sunday, make-up working day before Spring Festival
        *((date(2025, 1, d), False) for d in range(28, 32)),  # Spring Festival 28 Jan-4 Feb
        *((date(2025, 2, d), False) for d in range(1, 5)),
        (date(2025, 2, 5), True),
        (date(2025, 2, 8), True),  # Saturday, make-up working day
    ],
)
def test_working_days_follow_the_state_council_arrangement(day, working):
    assert CAL.is_working_day(day) is working


def test_one_working_day_from_friday_evening_ends_on_the_make_up_sunday():
    # 17:00-17:30 on Friday, then 7 h of Sunday 29 September (Saturday is off).
    due = CAL.add(at(2024, 9, 27, 17, 0), Limit.parse("1wd"))
    assert due == at(2024, 9, 29, 17, 0) and due.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("start", "limit", "due"),
    [
        # The National Day week counts for nothing: Monday 30 Sept + 3 wd is Thursday 10 Oct.
        (at(2024, 9, 30, 10, 0), "3wd", at(2024, 10, 10, 10, 0)),
        (at(2024, 9, 30, 10, 0), "5wd", at(2024, 10, 12, 10, 0)),  # the make-up Saturday
        (at(2024, 10, 9, 10, 0), "3wd", at(2024, 10, 12, 10, 0)),
        (at(2024, 10, 11, 17, 30), "1wd", at(2024, 10, 12, 17, 30)),  # not Monday 14 Oct
        (at(2024, 10, 12, 17, 30), "1wd", at(2024, 10, 14, 17, 30)),
    ],
)
def test_working_days_across_national_day_2024(start, limit, due):
    assert CAL.add(start, Limit.parse(limit)) == due


@pytest.mark.parametrize(
    ("start", "limit", "due"),
    [
        # Friday 24 Jan: 6 h that day, Saturday off, 7.5 h on the make-up Sunday 26 Jan, 1.5 h.
        (at(2025, 1, 24, 10, 0), "2wd", at(2025, 1, 27, 10, 0)),
        (at(2025, 1, 27, 10, 0), "1wd", at(2025, 2, 5, 10, 0)),  # over the whole holiday
        (at(2025, 2, 7, 10, 0), "1wd", at(2025, 2, 8, 10, 0)),  # the make-up Saturday 8 Feb
        (at(2025, 1, 25, 9, 0), "4wh", at(2025, 1, 26, 14, 0)),  # started on a day off
        (at(2025, 1, 30, 9, 0), "4wh", at(2025, 2, 5, 14, 0)),  # started in the holiday
    ],
)
def test_working_time_across_spring_festival_2025(start, limit, due):
    assert CAL.add(start, Limit.parse(limit)) == due


@pytest.mark.parametrize(
    ("clock", "due"),
    [
        ((7, 0), at(2024, 9, 26, 14, 0)),  # starts at 08:30: 3.5 h, lunch, 0.5 h
        ((12, 30), at(2024, 9, 26, 17, 30)),  # starts at 13:30 after lunch, ends at closing
        ((17, 45), at(2024, 9, 27, 14, 0)),  # after closing: the next working day
        ((11, 0), at(2024, 9, 26, 16, 30)),  # 1 h before lunch, 3 h after it
    ],
)
def test_four_working_hours_on_a_thursday(clock, due):
    assert CAL.add_working_hours(at(2024, 9, 26, *clock), 4) == due


def test_working_hours_from_friday_evening_go_to_the_make_up_sunday_not_monday():
    assert CAL.add_working_hours(at(2024, 9, 27, 17, 45), 4) == at(2024, 9, 29, 14, 0)
    assert CAL.add_working_hours(at(2024, 9, 28, 10, 0), 4) == at(2024, 9, 29, 14, 0)


def test_a_limit_ending_at_lunch_ends_at_noon_not_after_lunch():
    assert CAL.add_working_hours(at(2024, 9, 26, 8, 30), 3.5) == at(2024, 9, 26, 12, 0)
    assert CAL.add(at(2024, 9, 26, 8, 30), Limit.parse("0.5wd")) == at(2024, 9, 26, 13, 45)


def test_calendar_hours_run_through_the_night_and_the_holiday():
    start = at(2024, 10, 1, 22, 0)  # National Day, 22:00
    due = CAL.add(start, Limit.parse("4h"))
    assert due == at(2024, 10, 2, 2, 0) and due.utcoffset() == timedelta(hours=8)
    assert due.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=4)
    assert CAL.add(start, Limit.parse("0.25h")) == at(2024, 10, 1, 22, 15)


def test_calendar_days_count_holidays_and_keep_the_clock_time():
    assert CAL.add(at(2024, 9, 30, 10, 0), Limit.parse("3d")) == at(2024, 10, 3, 10, 0)
    assert CAL.add(at(2024, 9, 30, 10, 0), Limit.parse("30d")) == at(2024, 10, 30, 10, 0)


def test_a_start_in_another_zone_is_answered_in_the_calendars_zone():
    start = datetime(2024, 9, 27, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    due = CAL.add(start, Limit.parse("1wd"))
    assert due.tzinfo == SH and due == at(2024, 9, 29, 17, 0)


def test_in_a_zone_with_summer_time_hours_elapse_and_days_keep_the_clock():
    berlin = ZoneInfo("Europe/Berlin")
    cal = Calendar.of("Europe/Berlin")
    start = at(2024, 3, 30, 22, 0, zone=berlin)  # clocks go forward at 02:00 on 31 March
    assert cal.add_calendar_hours(start, 6) == at(2024, 3, 31, 5, 0, zone=berlin)
    noon = at(2024, 3, 30, 12, 0, zone=berlin)
    next_noon = cal.add_calendar_days(noon, 1)
    assert next_noon.replace(tzinfo=None) == datetime(2024, 3, 31, 12, 0)
    assert next_noon.astimezone(UTC) - noon.astimezone(UTC) == timedelta(hours=23)


def test_working_time_between_two_instants():
    friday, sunday = at(2024, 9, 27, 17, 0), at(2024, 9, 29, 17, 0)
    assert CAL.working_time_between(friday, sunday) == timedelta(hours=7, minutes=30)
    assert CAL.working_time_between(sunday, friday) == -timedelta(hours=7, minutes=30)
    # Closing on 30 September to opening on 8 October: the holiday week has no office time.
    assert CAL.working_time_between(at(2024, 9, 30, 17, 30), at(2024, 10, 8, 8, 30)) == (
        timedelta()
    )
    assert CAL.working_time_between(at(2024, 9, 26, 11, 0), at(2024, 9, 26, 14, 0)) == (
        timedelta(hours=1, minutes=30)
    )


def test_long_spans_count_whole_days_as_the_day_by_day_walk_does():
    rng = np.random.default_rng(7)
    local = Calendar.of(extra_holidays=[date(2025, 3, 3)], extra_workdays=[date(2025, 3, 8)])
    span = (at(2023, 1, 1) - at(2026, 12, 31)).total_seconds()
    for _ in range(300):
        a = at(2023, 1, 1) - timedelta(seconds=float(rng.uniform(0, -span)))
        b = a + timedelta(hours=float(rng.choice([1, 30, 50, 24 * 40, 24 * 700]) * rng.random()))
        for cal in (CAL, local):
            walked = cal._office_time(a, b, a.date(), b.astimezone(SH).date())
            assert cal.working_time_between(a, b) == walked
    # 2024 had 251 working days in Shanghai (the State Council's arrangement).
    assert CAL.working_days_between(date(2024, 1, 1), date(2025, 1, 1)) == 251
    assert local.working_days_between(date(2025, 3, 3), date(2025, 3, 10)) == 5


@pytest.mark.parametrize(
    "start",
    [at(2024, 9, 27, 17, 0), at(2024, 10, 3, 12, 0), at(2025, 1, 24, 11, 59), at(2025, 2, 7, 0, 0)],
)
@pytest.mark.parametrize("hours", [0.25, 4, 7.5, 22.5, 100])
def test_adding_working_hours_then_measuring_gives_them_back(start, hours):
    due = CAL.add_working_hours(start, hours)
    assert CAL.working_time_between(start, due) == timedelta(hours=hours)
    # The earliest such instant: a minute before it, the time has not yet all passed.
    assert CAL.working_time_between(start, due - timedelta(minutes=1)) < timedelta(hours=hours)


def test_local_days_off_and_working_days_from_settings():
    off = Calendar.of(extra_holidays=[date(2024, 9, 27)])  # a local holiday on the Friday
    assert not off.is_working_day(date(2024, 9, 27))
    assert off.add(at(2024, 9, 26, 17, 0), Limit.parse("1wd")) == at(2024, 9, 29, 17, 0)
    on = Calendar.of(extra_workdays=[date(2024, 9, 28), date(2024, 10, 2)])
    assert on.add(at(2024, 9, 27, 17, 0), Limit.parse("1wd")) == at(2024, 9, 28, 17, 0)
    assert on.add(at(2024, 10, 1, 10, 0), Limit.parse("4wh")) == at(2024, 10, 2, 14, 0)


def test_a_year_the_package_does_not_know_counts_weekdays_and_warns(caplog):
    assert worktime.LAST_YEAR == 2026 and not worktime.covers(date(2027, 1, 1))
    worktime._warn_uncovered.cache_clear()
    with caplog.at_level(logging.WARNING, logger="riskgrid.worktime"):
        assert CAL.is_working_day(date(2027, 1, 1))  # a Friday: New Year unknown for 2027
        assert not CAL.is_working_day(date(2027, 1, 2))
    assert [r.getMessage() for r in caplog.records if "2027" in r.getMessage()] == [
        "chinesecalendar 1.11.0 knows holidays for 2004-2026 only: 2027 counts Monday to "
        "Friday as working days, plus worktime.extra_holidays and extra_workdays"
    ]
    local = Calendar.of(extra_holidays=[date(2027, 1, 1)])
    assert local.add(at(2026, 12, 31, 17, 0), Limit.parse("1wd")) == at(2027, 1, 4, 17, 0)


def test_other_office_hours():
    cal = Calendar.of(hours=[("9:00", "17:00")])
    assert cal.day_length == timedelta(hours=8)
    assert cal.add(at(2024, 9, 26, 9, 0), Limit.parse("1wd")) == at(2024, 9, 26, 17, 0)
    night = Calendar.of(hours=[("00:00", "24:00")])  # a round-the-clock office on working days
    assert night.add_working_hours(at(2024, 9, 30, 20, 0), 8) == at(2024, 10, 8, 4, 0)


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        CAL.add(datetime(2024, 9, 27, 17, 0), Limit.parse("1wd"))


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("4wh", Limit(4, Unit.WORKING_HOURS)),
        ("1wd", Limit(1, Unit.WORKING_DAYS)),
        ("0.5h", Limit(0.5, Unit.CALENDAR_HOURS)),
        (" 30d ", Limit(30, Unit.CALENDAR_DAYS)),
    ],
)
def test_limit_notation(text, limit):
    assert Limit.parse(text) == limit
    assert Limit.parse(str(limit)) == limit


@pytest.mark.parametrize("text", ["4", "wh", "-1h", "0h", "1.5.0h", "4 hours", "2001wh", "4WH"])
def test_limit_notation_refused(text):
    with pytest.raises(ValueError, match="limit"):
        Limit.parse(text)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"hours": [("12:00", "08:30")]}, "end before they start"),
        ({"hours": [("08:30", "12:00"), ("11:00", "17:00")]}, "overlap"),
        ({"hours": [("13:30", "17:30"), ("08:30", "12:00")]}, "in order"),
        ({"hours": [("8h30", "12:00")]}, "not a time of day"),
        ({"hours": [("08:30", "24:30")]}, "not a time of day"),
        ({"hours": []}, "at least one period"),
        ({"hours": [("08:30", "09:00")]}, "at least one hour"),
        (
            {"extra_holidays": ["2024-10-12"], "extra_workdays": ["2024-10-12"]},
            "both list 2024-10-12",
        ),
    ],
)
def test_worktime_settings_refuse_what_cannot_be_a_calendar(values, message):
    with pytest.raises(ValidationError, match=message):
        WorkTimeSettings(**values)


def test_worktime_settings_from_the_environment(monkeypatch):
    from geo.settings import Settings

    monkeypatch.setenv("RISKGRID_WORKTIME__HOURS", '[["09:00", "12:00"], ["14:00", "18:00"]]')
    monkeypatch.setenv("RISKGRID_WORKTIME__EXTRA_HOLIDAYS", '["2027-01-01"]')
    s = Settings()
    assert s.worktime.hours == [("09:00", "12:00"), ("14:00", "18:00")]
    assert s.worktime.extra_holidays == [date(2027, 1, 1)]
