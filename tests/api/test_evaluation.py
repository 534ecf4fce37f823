"""GET /api/v1/evaluation (issue 15, item 5): five reports worked through the real loop (a
return, a rework, one still in hand, a rejection, a fix on the spot) and a visit, and every
rate of the departments, the district and the grid worker read off the answer; who may read
which rows; CSV and XLSX; bad parameters; the monthly trend."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import text

from api.app import create_app
from tests.api.test_reports import WEST, grids, report  # noqa: F401 - the grids fixture
from tests.factories import after_photo, clients_for, login_as

GAS, FIRE = "燃气公司", "消防救援支队"
URL = "/api/v1/evaluation"
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def loop(grids, settings):  # noqa: F811 - the fixture imported above
    """The five reports through the loop, and the clients of everyone who may ask."""
    app = create_app(settings, engine=grids)
    tokens = {
        "worker": login_as(grids, "worker", "wang-wgy", grids=(WEST,)),
        "dispatcher": login_as(grids, "dispatcher", "zhao-zz"),
        "elsewhere": login_as(grids, "dispatcher", "qin-dd", districts=("230603",)),
        "gas": login_as(grids, "department", "qian-rq", department=GAS),
        "fire": login_as(grids, "department", "li-xf", department=FIRE),
        "planner": login_as(grids, "planner", "zhou-gh"),
        "coordinator": login_as(grids, "coordinator", "wu-xt"),
    }
    with clients_for(app, tokens) as c:
        w, d, gas = c["worker"], c["dispatcher"], c["gas"]

        def send(**kw) -> str:
            r = w.post("/api/v1/reports", json=report(**kw))
            assert r.status_code == 201, r.text
            return r.json()["id"]

        def move(who, rid, to, **kw):
            r = who.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})
            assert r.status_code == 200, r.text

        def resolve(rid, level):
            after_photo(grids, rid)
            move(gas, rid, "resolved", level=level)

        a, b, open_, rejected = send(), send(x=260), send(x=270), send(x=280)
        move(d, a, "accepted")
        move(d, a, "dispatched", department=FIRE)
        move(c["fire"], a, "returned", reason="燃气泄漏不属于消防")
        move(d, a, "dispatched", department=GAS)
        move(gas, a, "in_progress")
        resolve(a, "community")
        move(w, a, "verified")
        move(d, b, "accepted")
        move(d, b, "dispatched", department=GAS)
        move(gas, b, "in_progress")
        resolve(b, "district")
        move(w, b, "in_progress", reason="仍有气味")
        resolve(b, "street")
        move(w, b, "verified")
        move(d, open_, "accepted")
        move(d, open_, "dispatched", department=GAS)
        move(gas, open_, "in_progress")
        move(d, rejected, "rejected", reason="重复上报")
        on_site = w.post("/api/v1/reports", json=report(x=290, on_site=True))
        assert on_site.status_code == 201, on_site.text
        with grids.begin() as conn:  # a visit (走访) of the worker's grid
            conn.execute(
                text(
                    "INSERT INTO campaigns (code, name, theme, starts_on, ends_on) "
                    "VALUES ('ca1', '创安一号', 'gas', '2020-01-01', '2030-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO visits (id, campaign_code, user_id, geom, grid_code, "
                    "assignment_method, visited_at, request_hash) SELECT :id, 'ca1', id, "
                    "ST_SetSRID(ST_MakePoint(125.003, 46.6005), 4326), :g, 'inside', now(), 'h' "
                    "FROM users WHERE username = 'wang-wgy'"
                ),
                {"id": uuid.uuid4(), "g": WEST},
            )
        yield c


def _units(r) -> dict[str, dict]:
    assert r.status_code == 200, r.text
    return {u["unit"]: u for u in r.json()["units"]}


def test_every_rate_of_departments_a_district_and_a_worker_read_off_the_loop(loop):
    units = _units(loop["planner"].get(URL, params={"by": "department"}))
    gas, fire = units[GAS], units[FIRE]
    # 应结案: the two verified (the open one's closing deadline lies a day ahead).
    assert (gas["due_to_close"], gas["closed"], gas["closed_on_time"]) == (2, 2, 2)
    assert gas["closure_rate"] == 1.0 and gas["on_time_closure_rate"] == 1.0
    assert (gas["handling_due"], gas["handled_on_time"]) == (2, 2)
    # 返工率: one of the two resolved was sent back; street or below: the community one only
    # (the other was once resolved at district level).
    assert (gas["resolved"], gas["reworked"], gas["rework_rate"]) == (2, 1, 0.5)
    assert (gas["resolved_low"], gas["street_or_below_share"]) == (1, 0.5)
    # 核查通过率: three checks (one sent back), two passed.
    assert (gas["checks"], gas["checks_passed"]) == (3, 2)
    assert gas["check_pass_rate"] == pytest.approx(2 / 3, abs=1e-6)
    # 回退率: the fire brigade returned the one dispatch it had; gas none of its three.
    assert (gas["dispatched"], gas["returned"], gas["return_rate"]) == (3, 0, 0.0)
    assert (fire["dispatched"], fire["returned"], fire["return_rate"]) == (1, 1, 1.0)
    assert fire["due_to_close"] == 0 and fire["closure_rate"] is None  # no denominator: null
    assert gas["overdue_open"] == 0
    # Not a department's: what people send and visit.
    assert gas["reports_sent"] is None and gas["visit_coverage"] is None
    # Each rate with its interval, containing it.
    low, high = gas["check_pass_rate_ci"]
    assert low < 2 / 3 < high and fire["return_rate_ci"][1] == 1.0
    assert fire["closure_rate_ci"] is None
    assert gas["rank"] == 1 and fire["rank"] is None  # no case due to close: unranked
    # The district and the grid worker count what they send, check and visit.
    (district,) = _units(loop["planner"].get(URL, params={"by": "district"})).values()
    assert district["unit"] == "230602" and district["unit_name"] == "萨尔图区"
    assert (district["reports_sent"], district["self_resolved"]) == (5, 1)
    assert (district["due_to_close"], district["closed"]) == (2, 2)
    assert (district["grids"], district["grids_visited"], district["visit_coverage"]) == (
        3,
        1,
        pytest.approx(1 / 3, abs=1e-6),
    )
    r = loop["worker"].get(URL, params={"by": "worker"})
    (me,) = _units(r).values()
    assert me["unit"] == "wang-wgy" and (me["reports_sent"], me["self_resolved"]) == (5, 1)
    # 核查: the first checks of the two fixes in the worker's grid, both theirs and in time.
    assert (me["check_tasks"], me["checks_answered_on_time"], me["checks_on_time"]) == (2, 2, 1.0)
    assert (me["grids"], me["grids_visited"], me["visit_coverage"]) == (1, 1, 1.0)


def test_who_may_read_which_rows(loop, db):
    assert loop["coordinator"].get(URL).status_code == 403
    assert "planners" in loop["coordinator"].get(URL).json()["detail"]
    # A department sees its own row, computed among all departments; nothing by district.
    assert list(_units(loop["gas"].get(URL))) == [GAS]
    assert loop["gas"].get(URL, params={"by": "district"}).status_code == 403
    assert loop["worker"].get(URL, params={"by": "department"}).status_code == 403
    # A dispatcher of another district sees no unit of this one; a city-wide one sees it.
    assert _units(loop["elsewhere"].get(URL, params={"by": "district"})) == {}
    assert list(_units(loop["dispatcher"].get(URL, params={"by": "district"}))) == ["230602"]
    # Grid workers' rows name them: each read is in the audit log.
    loop["planner"].get(URL, params={"by": "worker"})
    with db.connect() as conn:
        logged = conn.execute(
            text(
                "SELECT actor, people FROM audit_log WHERE action = 'personal_data.read' "
                "AND object_type = 'evaluation' ORDER BY id"
            )
        ).all()
    assert [tuple(x) for x in logged][-1] == ("zhou-gh", 1)


def test_csv_and_xlsx_one_row_per_unit_with_intervals_a_local_period_and_the_trend(loop):
    p = loop["planner"]
    r = p.get(URL, params={"by": "department", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {row["unit"] for row in rows} == {GAS, FIRE}
    gas = next(row for row in rows if row["unit"] == GAS)
    assert (
        float(gas["check_pass_rate_ci_low"])
        < float(gas["check_pass_rate"])
        < float(gas["check_pass_rate_ci_high"])
    )
    r = p.get(URL, params={"by": "department", "format": "xlsx"})
    assert 'filename="evaluation_department.xlsx"' in r.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["units", "definitions"]
    header = [c.value for c in book["units"][1]]
    assert {"unit", "rank", "closure_rate", "closure_rate_ci_low", "return_rate_shrunk"} <= set(
        header
    )
    assert book["units"].max_row == 3
    rates = [row[0].value for row in book["definitions"].iter_rows(min_row=2)]
    assert "on_time_closure_rate" in rates and "visit_coverage" in rates
    # A period shorthand is local time; the trend evaluates each month on its own.
    this_month = datetime.now(UTC).astimezone(ZONE).strftime("%Y-%m")
    r = p.get(URL, params={"by": "department", "period": "2020-Q2"})
    assert r.json()["period"] == {
        "since": "2020-03-31T16:00:00Z",
        "until": "2020-06-30T16:00:00Z",
        "label": "2020-Q2",
    }
    assert _units(r) == {}
    months = p.get(f"{URL}/trend", params={"by": "department"}).json()["months"]
    assert len(months) == 12 and months[-1]["month"] == this_month
    assert (months[-1]["due_to_close"], months[-1]["closed"], months[-1]["closure_rate"]) == (
        2,
        2,
        1.0,
    )
    assert all(m["closure_rate"] is None for m in months[:-1])


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"period": "2024-13"}, "month"),
        ({"period": "last year"}, "2024-Q2"),
        ({"period": "2024", "since": "2024-01-01T00:00:00+08:00"}, "not both"),
        ({"theme": "weather"}, "unknown theme"),
        ({"by": "county"}, "by"),
        ({"rank_by": "speed"}, "rank_by"),
        ({"since": "2024-01-01T00:00:00"}, "time zone"),
        ({"since": "2024-06-01T00:00:00+08:00", "until": "2024-01-01T00:00:00+08:00"}, "before"),
        ({"format": "pdf"}, "format"),
    ],
)
def test_bad_parameters_answer_422_saying_what_to_change(client, params, word):
    r = client.get(URL, params=params)
    assert r.status_code == 422, r.text
    assert word in r.json()["detail"]
