"""The evaluation page `/evaluation` (issue 15, item 5): the ranking of units with each rate's
interval to scale and its rank, every rate, and the monthly trend as a table with its series
in `data-chart` for a chart to come; zh by default, en on request; a department sees its own
row, a coordinator a page saying who the evaluation is for; in Chromium, offline, with a
screenshot in tests/artifacts/."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.factories import login_as
from tests.geo.test_evaluation import scenario  # noqa: F401 - the random loop scenario
from tests.web.conftest import ARTIFACTS, offline_page, serving

OFFICE = {"viewport": {"width": 1366, "height": 768}}


@pytest.fixture(scope="module")
def app(test_database):
    settings, engine = test_database
    return create_app(settings, engine=engine)


def _series(html: str) -> dict:
    found = re.search(r"data-chart=\"closure-trend\" data-series='([^']*)'", html)
    assert found is not None
    return json.loads(found[1])


def test_the_page_ranks_units_with_intervals_and_shows_the_trend(app, db, scenario):  # noqa: F811
    admin = login_as(db, "admin", "eval-admin")
    with TestClient(app, headers={"Authorization": f"Bearer {admin}"}) as c:
        r = c.get("/evaluation", params={"by": "street", "period": "2024"})
        assert r.status_code == 200 and "综合评价" in r.text
        ranking = r.text.split('id="ranking"')[1].split("</table>")[0]
        assert ranking.count("<tr data-rank=") == 3 and ranking.count("<svg") == 3
        assert "萨尔图街道" in ranking and "95%" in r.text
        series = _series(r.text)
        assert series["months"][0] == "2024-01" and len(series["months"]) == 12
        assert len(series["closure_rate"]) == 12 and any(series["due_to_close"])
        english = c.get("/evaluation", params={"by": "district", "lang": "en"})
        assert english.status_code == 200 and "Evaluation" in english.text
        assert "Closure rate per month" in english.text
        bad = c.get("/evaluation", params={"period": "2024-13"})
        assert bad.status_code == 422 and "month" in bad.text
    gas = login_as(db, "department", "eval-gas", department="燃气公司")
    with TestClient(app, headers={"Authorization": f"Bearer {gas}"}) as c:
        own = c.get("/evaluation").text.split('id="ranking"')[1].split("</table>")[0]
        assert own.count("<tr data-rank=") == 1 and "燃气公司" in own
    coordinator = login_as(db, "coordinator", "eval-coord")
    with TestClient(app, headers={"Authorization": f"Bearer {coordinator}"}) as c:
        r = c.get("/evaluation")
        assert r.status_code == 403 and "planners" in r.text


def test_the_page_in_chromium_offline(app, db, scenario):  # noqa: F811
    admin = login_as(db, "admin", "eval-admin")
    with serving(app) as base, offline_page(base, admin, **OFFICE) as (page, outside, errors):
        page.goto(f"{base}/evaluation?by=district&period=2024")
        rows = page.eval_on_selector_all("#ranking tbody tr", "els => els.map(e => e.dataset.rank)")
        assert sorted(rows) == ["1", "2"]
        chart = page.get_attribute("[data-chart=closure-trend]", "data-series")
        assert len(json.loads(chart)["months"]) == 12
        assert page.locator("#trend tbody tr").count() == 12
        page.screenshot(path=str(ARTIFACTS / "evaluation.png"), full_page=True)
        assert outside == [] and errors == []
