"""The dispatcher's queues (geo/reports/queues.py) and their pages: counts per queue within the
dispatcher's scope, a queue page with its cursor, a duplicate beside its original, the handlers
of a department, and a report's page offering only the viewer's moves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.identity.scope import EVERYTHING, ReportScope
from geo.reports import queues
from geo.reports.queries import ReportFilter
from geo.reports.queues import Queue
from tests.api.test_reports import WEST, grids, report  # noqa: F401 - the grids fixture
from tests.factories import clients_for, login_as

GAS = "燃气公司"


@pytest.fixture
def people(grids, settings):  # noqa: F811 - the fixture imported above
    """A worker of WEST, a city-wide dispatcher, one bound to another district, gas users."""
    app = create_app(settings, engine=grids)
    tokens = {
        "worker": login_as(grids, "worker", "wang-wgy", grids=(WEST,)),
        "dispatcher": login_as(grids, "dispatcher", "zhao-zz"),
        "elsewhere": login_as(grids, "dispatcher", "qin-zz", districts=("230603",)),
        "gas": login_as(grids, "department", "qian-rq", department=GAS),
    }
    login_as(grids, "department", "sun-rq", department=GAS)
    with clients_for(app, tokens) as clients:
        yield clients


def send(c: TestClient, x: float, y: float = 50.0, **kw) -> dict:
    r = c.post("/api/v1/reports", json=report(x, y, **kw))
    assert r.status_code == 201, r.text
    return r.json()


def move(c: TestClient, rid: str, to: str, **kw) -> dict:
    r = c.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def world(people):
    """One report waiting in each queue (a new one twice), from the worker of WEST."""
    w, d, gas = people["worker"], people["dispatcher"], people["gas"]
    ids = {
        "new": send(w, 100)["id"],
        "original": send(w, 250)["id"],
        "duplicate": send(w, 250, description="同一处漏气")["id"],
        "unassigned": send(w, 1600, 250)["id"],  # 600 m out: no grid
        "accepted": send(w, 400)["id"],
        "returned": send(w, 100, 400)["id"],
        "supervised": send(w, 300, 300)["id"],
    }
    move(d, ids["accepted"], "accepted")
    move(d, ids["returned"], "accepted")
    move(d, ids["returned"], "dispatched", department=GAS)
    move(gas, ids["returned"], "returned", reason="不是燃气问题")
    move(d, ids["supervised"], "accepted")
    r = d.put(f"/api/v1/reports/{ids['supervised']}/supervision", json={"note": "尽快"})
    assert r.status_code == 200, r.text
    return ids


def test_counts_put_each_open_report_in_its_queues(world, db):
    with db.connect() as conn:
        got = queues.counts(conn, ReportFilter(scope=EVERYTHING))
    # new: new, original, duplicate, unassigned are still to be accepted.
    assert got == {
        "new": 4,
        "accepted": 2,
        "unassigned": 1,
        "duplicates": 1,
        "returned": 1,
        "overdue": 0,
        "supervised": 1,
    }


def test_overdue_counts_a_report_past_its_stage_deadline(world, db):
    with db.begin() as conn:
        conn.execute(
            text("UPDATE reports SET due_at = now() - interval '1 hour' WHERE id = :i"),
            {"i": world["new"]},
        )
        got = queues.counts(conn, ReportFilter(scope=EVERYTHING))
        rows = queues.queue_page(conn, ReportFilter(), Queue.OVERDUE, 10)["rows"]
    assert got["overdue"] == 1 and [str(r["id"]) for r in rows] == [world["new"]]


def test_a_dispatcher_of_another_district_sees_empty_queues(world, db):
    with db.connect() as conn:
        got = queues.counts(conn, ReportFilter(scope=ReportScope(districts=("230603",))))
    assert set(got.values()) == {0}


def test_a_queue_page_lists_the_longest_waiting_first_and_pages_on(world, db):
    f = ReportFilter(scope=EVERYTHING)
    with db.connect() as conn:
        first = queues.queue_page(conn, f, Queue.NEW, 3)
        rest = queues.queue_page(conn, f, Queue.NEW, 3, first["next_cursor"])
    seen = [str(r["id"]) for r in first["rows"] + rest["rows"]]
    assert seen == [world[k] for k in ("new", "original", "duplicate", "unassigned")]
    assert rest["next_cursor"] is None


def test_a_returned_report_shows_why(world, db):
    with db.connect() as conn:
        rows = queues.queue_page(conn, ReportFilter(), Queue.RETURNED, 10)["rows"]
    assert [(str(r["id"]), r["return_reason"]) for r in rows] == [
        (world["returned"], "不是燃气问题")
    ]


def test_a_duplicate_comes_with_its_original_and_their_distance(world, db):
    with db.connect() as conn:
        found = queues.originals(conn, [world["duplicate"]], EVERYTHING)
    original = found[world["duplicate"]]
    assert str(original["id"]) == world["original"]
    assert float(original["distance_m"]) < 1 and original["photos"] == []


def test_department_users_are_listed_for_dispatchers_only(people):
    r = people["dispatcher"].get(f"/api/v1/departments/{GAS}/users")
    assert r.status_code == 200, r.text
    assert [u["username"] for u in r.json()] == ["qian-rq", "sun-rq"]
    assert set(r.json()[0]) == {"id", "username", "name"}
    assert people["worker"].get(f"/api/v1/departments/{GAS}/users").status_code == 403
    assert people["dispatcher"].get("/api/v1/departments/月球开发局/users").status_code == 404


def test_the_console_shows_the_counts_and_is_for_dispatchers(world, people):
    page = people["dispatcher"].get("/console", params={"queue": "returned"})
    assert page.status_code == 200, page.text
    assert 'data-queue="new"' in page.text and '待受理 <span class="count">4</span>' in page.text
    assert world["returned"] in page.text and "不是燃气问题" in page.text
    assert world["new"] not in page.text  # another queue's report
    en = people["dispatcher"].get("/console", params={"queue": "duplicates", "lang": "en"})
    assert "Possible original" in en.text and world["original"] in en.text
    refused = people["worker"].get("/console")
    assert refused.status_code == 403 and "调度台仅对指挥中心和管理员开放" in refused.text


def test_the_console_filters_by_theme_and_age(world, people):
    d = people["dispatcher"]
    other = d.get("/console", params={"theme": "flood"})
    assert other.status_code == 200 and world["new"] not in other.text
    recent = d.get("/console", params={"age": "1d"})
    assert world["new"] in recent.text
    old = d.get("/console", params={"age": "older"})
    assert world["new"] not in old.text
    assert d.get("/console", params={"age": "forever"}).status_code == 422


def test_a_report_page_offers_only_the_viewers_moves(world, people):
    rid = world["new"]
    mine = people["dispatcher"].get(f"/console/reports/{rid}")
    assert mine.status_code == 200, mine.text
    offered = {m for m in ("accepted", "rejected", "duplicate") if f'data-to="{m}"' in mine.text}
    assert offered == {"accepted", "rejected", "duplicate"}
    assert 'id="supervise"' in mine.text and "剩余" in mine.text
    seen = people["worker"].get(f"/console/reports/{rid}")
    assert seen.status_code == 200 and 'class="move"' not in seen.text
    assert 'id="no-actions"' in seen.text and 'id="supervise"' not in seen.text
    gone = people["gas"].get(f"/console/reports/{rid}")  # not dispatched to them
    assert gone.status_code == 404
