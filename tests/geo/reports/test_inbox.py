"""A department's inbox in SQL: which tasks, counted per filter, in which order, with the
clock of each stage in its own kind of time."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from geo.identity.scope import ReportScope
from geo.reports import inbox
from geo.reports.queries import ReportFilter
from geo.settings import ReportSettings, WorkTimeSettings
from tests.factories import login_as

GAS = "燃气公司"
ROAD = "交通运输局"
SCOPE = ReportScope(department=GAS)
RULES, WORKTIME = ReportSettings(), WorkTimeSettings()


def count(db, f: ReportFilter, me: int) -> dict:
    with db.connect() as conn:
        return inbox.counts(conn, f, me)


def tasks(db, f: ReportFilter, limit: int = 10, offset: int = 0) -> list[dict]:
    with db.connect() as conn:
        return inbox.tasks(conn, f, limit, offset, RULES, WORKTIME)


def user_id(db, username: str) -> int:
    login_as(db, "department", username, department=GAS)
    with db.connect() as conn:
        return conn.execute(
            text("SELECT id FROM users WHERE username = :u"), {"u": username}
        ).one()[0]


def task(
    db,
    status: str = "dispatched",
    department: str = GAS,
    handler: int | None = None,
    due: str = "2 hours",
    supervised: bool = False,
    theme: str = "gas",
    category: str = "gas_leak",
) -> str:
    """Store one report in `status` routed to `department`, due `due` from now."""
    rid = str(uuid.uuid4())
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO reports (id, theme, category, severity, status, geom, source_crs, "
                "assignment_method, reported_at, description, reporter, department, handler_id, "
                "due_at, supervised_at, resolution_level) VALUES (:id, :theme, :cat, 2, :status, "
                "ST_SetSRID(ST_MakePoint(125.0, 46.6), 4326), 'wgs84', 'unassigned', "
                "now() - interval '1 day', '楼道有燃气味', '王五', :dept, :h, "
                "now() + CAST(:due AS interval), CASE WHEN :sup THEN now() END, "
                "CAST(:level AS varchar))"
            ),
            {
                "id": rid,
                "theme": theme,
                "cat": category,
                "status": status,
                "dept": department,
                "h": handler,
                "due": due,
                "sup": supervised,
                "level": "street" if status == "resolved" else None,
            },
        )
    return rid


def test_counts_per_filter_within_the_department_and_the_inbox_statuses(db):
    me, other = user_id(db, "qian-rq"), user_id(db, "sun-rq")
    task(db, handler=me)
    task(db, "in_progress", handler=me, due="-1 hour")  # late
    task(db, handler=other, supervised=True)
    task(db)
    task(db, "resolved", handler=me, due="-5 hours", supervised=True)  # 核查's clock, not theirs
    task(db, "returned")  # not theirs any more
    task(db, "accepted")  # not dispatched yet
    task(db, department=ROAD, theme="road_safety", category="road_damage")
    found = count(db, ReportFilter(scope=SCOPE), me)
    assert found == {"all": 5, "mine": 3, "unassigned": 1, "late": 1, "supervised": 1}
    # The handler of the filter is the tab shown; the counts are of every tab.
    mine = count(db, ReportFilter(scope=SCOPE, handler_id=me), me)
    assert mine == found


def test_tasks_open_first_late_then_supervised_then_by_due_time(db):
    me = user_id(db, "qian-rq")
    done = task(db, "resolved", handler=me, due="-5 hours")
    soon = task(db, due="30 minutes")
    later = task(db, due="3 hours")
    watched = task(db, due="5 hours", supervised=True)
    late = task(db, "in_progress", handler=me, due="-1 hour")
    found = tasks(db, ReportFilter(scope=SCOPE))
    assert [str(t["id"]) for t in found] == [late, watched, soon, later, done]
    first = found[0]
    assert first["late"] and first["handler"] == "qian-rq"
    # Gas leaks run on calendar time: an hour late is an hour, whatever the office hours.
    assert not first["working"]
    assert timedelta(minutes=-61) < first["time_left"] < timedelta(minutes=-59)
    assert not found[-1]["late"]  # resolved past its 核查 limit: not the department's lateness
    page2 = tasks(db, ReportFilter(scope=SCOPE), 2, 2)
    assert [str(t["id"]) for t in page2] == [soon, later]
    unassigned = tasks(db, ReportFilter(scope=SCOPE, handler_id=0))
    assert {str(t["id"]) for t in unassigned} == {soon, later, watched}


def test_a_working_time_limit_counts_office_time_and_masked_themes_hide_text(db):
    road = task(db, department=ROAD, theme="road_safety", category="road_damage", due="1 day")
    scope = ReportScope(department=ROAD, masked_themes=("road_safety",))
    [found] = tasks(db, ReportFilter(scope=scope))
    assert str(found["id"]) == road and found["working"]
    # A calendar day holds at most one working day's office time (7.5 h by default).
    assert timedelta(0) <= found["time_left"] <= timedelta(hours=7.5)
    assert found["masked"] and found["description"] is None


def test_a_task_long_overdue_is_clocked_in_working_time_too(db):
    # 400 days late are some 270 working days (weekends and holidays off), of 7.5 office hours.
    task(db, department=ROAD, theme="road_safety", category="road_damage", due="-400 days")
    [found] = tasks(db, ReportFilter(scope=ReportScope(department=ROAD)))
    assert found["late"] and found["working"]
    day = timedelta(hours=7.5)
    assert -300 * day < found["time_left"] < -250 * day
