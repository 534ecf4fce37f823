"""The parts of a draft that need no database: the map's frame and scale bar, the trend's
slicing, spans in working time, the recommended actions, the loop's table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geo.errors import Conflict, Forbidden
from geo.identity.principal import Principal
from geo.letters import recommend
from geo.letters.mapdata import HEIGHT, WIDTH, fit, scale_bar
from geo.letters.open_reports import amount
from geo.letters.spots import step_for
from geo.letters.status import LetterMove, check_editable, check_move, moves_from
from geo.reports.deadlines import calendar
from geo.settings import WorkTimeSettings
from geo.vocabulary import Role

T0 = datetime(2024, 9, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Daqing


def test_the_frame_keeps_the_map_s_proportions_and_the_scale_bar_is_round():
    f = fit(0, 0, 10_000, 1_000)  # wide and flat: heightened
    assert (f.x1 - f.x0) / (f.y1 - f.y0) == pytest.approx(WIDTH / HEIGHT)
    assert f.x0 < 0 and f.x1 > 10_000  # padded
    bar = scale_bar(f)
    assert bar == {"metres": 2000, "px": pytest.approx(2000 * f.scale, abs=0.1)}
    assert scale_bar(fit(0, 0, 300, 300))["metres"] == 100  # 519 m wide once fitted
    tall = fit(0, 0, 100, 5000)
    assert (tall.x1 - tall.x0) / (tall.y1 - tall.y0) == pytest.approx(WIDTH / HEIGHT)


def test_the_trend_is_sliced_by_the_period():
    assert step_for(T0, T0 + timedelta(days=2)) is None
    assert step_for(T0, T0 + timedelta(days=3)) == "day"
    assert step_for(T0, T0 + timedelta(days=31)) == "day"
    assert step_for(T0, T0 + timedelta(days=90)) == "week"
    assert step_for(T0, T0 + timedelta(days=6 * 365)) == "month"


def test_spans_are_given_in_the_limit_s_kind_of_time():
    cal = calendar(WorkTimeSettings())
    # Monday 09:00 to Friday 09:00: 7 + 3 × 7.5 + 0.5 office hours, four working days.
    worked = cal.working_time_between(T0, T0 + timedelta(days=4))
    assert amount(worked, True, cal) == {"amount": 4.0, "unit": "working_days"}
    assert amount(timedelta(hours=3), True, cal) == {"amount": 3.0, "unit": "working_hours"}
    assert amount(timedelta(hours=30), False, cal) == {"amount": 1.2, "unit": "calendar_days"}
    assert amount(timedelta(minutes=90), False, cal) == {"amount": 1.5, "unit": "calendar_hours"}


FIGURES = {"closure_rate": 0.5, "closed": 5, "accepted": 10, "returned": 0, "reworked": 2}
OPEN = {"overdue": 3, "items": [{"overdue_by": {"amount": 2.5, "unit": "working_days"}}]}
HOT = {"grids": [{"name": f"网格{i}"} for i in range(5)]}
TREND = {"grids": [{"name": "网格1", "pattern": "new_hot"}]}
CATS = [{"zh": "不安全用气设备", "received": 9}]


def test_recommendations_answer_each_finding():
    text = recommend.draft(FIGURES, CATS, HOT, TREND, OPEN)
    lines = text.splitlines()
    assert lines[0] == (
        "1. 对超期未办结的 3 件事件（最长超期 2.5 个工作日）逐件明确责任人和办结时限，限期办结，"
        "并在回复中说明超期原因。"
    )
    assert "网格0、网格1、网格2等 5 个网格" in lines[1] and "不安全用气设备" in lines[1]
    assert "新增热点" in lines[2]
    assert "50.0%（5/10）" in lines[3] and "0 件事件被回退、2 件返工" in lines[4]
    assert lines[-1].startswith("6. ")
    quiet = recommend.draft(
        {**FIGURES, "closure_rate": 0.9, "reworked": 0}, [], {"grids": []}, {}, {"overdue": 0}
    )
    assert quiet.splitlines() == ["1. 举一反三，健全隐患排查和闭环处置机制，按期书面回复整改情况。"]


def test_the_loop_refuses_moves_it_lacks_and_roles_that_do_not_make_them():
    desk = Principal(1, "desk", Role.DISPATCHER)
    dept = Principal(2, "zjj", Role.DEPARTMENT, department="住房和城乡建设局")
    assert check_move(desk, LetterMove.ISSUE, "draft", "x").to == "issued"
    with pytest.raises(Conflict, match="possible now: acknowledge"):
        check_move(desk, LetterMove.CLOSE, "issued", "x")
    with pytest.raises(Forbidden, match="a department user or an admin"):
        check_move(desk, LetterMove.ACKNOWLEDGE, "issued", "x")
    assert check_move(dept, LetterMove.REPLY, "acknowledged", "x").to == "replied"
    with pytest.raises(Conflict, match="frozen"):
        check_editable(desk, "issued", "x")
    with pytest.raises(Forbidden):
        check_editable(dept, "draft", "x")
    assert moves_from("closed") == [] and moves_from("replied")[0]["move"] == "close"
