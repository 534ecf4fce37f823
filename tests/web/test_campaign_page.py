"""The campaign pages on the demo: 创安四号's figures against its progress API, its charts
drawn by ECharts with titled axes, its coverage map of every grid, offline and under the
pages' Content-Security-Policy in Chromium at 1366×768; the HTML in both languages, per role,
for an unknown campaign and without a login."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import httpx

from tests.factories import login_as
from tests.web.conftest import ARTIFACTS, offline_page
from tests.web.test_security_headers import WATCH

SCREEN = {"viewport": {"width": 1366, "height": 768}}
TOTALS = ("visits", "hazards_found", "hazards_resolved", "relocations", "leaflets", "stickers")
CHARTS = re.compile(r"data-chart=\"([a-z-]+)\" data-series='([^']*)'")


def _charts(page: str) -> dict[str, dict]:
    return {name: json.loads(html.unescape(raw)) for name, raw in CHARTS.findall(page)}


def _total(page: str, key: str) -> int:
    m = re.search(
        rf'data-total="{key}"><span class="label">[^<]*</span> <b class="value">([\d,]+)', page
    )
    assert m, key
    return int(m.group(1).replace(",", ""))


def test_campaign_page_html_in_both_languages_per_role_and_unknown(demo_client, demo_engine):
    progress = demo_client.get("/api/v1/campaigns/CA04/progress").json()
    r = demo_client.get("/campaigns/CA04")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    page = r.text
    assert '<html lang="zh">' in page and "<h1>创安四号" in page
    for key in TOTALS:
        assert _total(page, key) == progress["totals"][key], key
    assert "转移 365 户" in page and "水务局" in page and "让胡路区" in page
    assert 'data-item="to_relocate"><td>需转移人数</td><td>数字</td><td></td><td>转移人数' in page
    assert " style=" not in page and "<style" not in page
    charts = _charts(page)
    assert set(charts) == {"daily-visits", "daily-hazards", "districts"}
    visits = charts["daily-visits"]
    assert visits["x"]["name"] == "日期" and visits["x"]["data"][0] == "2023-07-25"
    assert [a["name"] for a in visits["y"]] == ["当日走访（次）", "累计走访（次）"]
    daily, running = visits["series"][0]["data"], visits["series"][1]["data"]
    assert sum(daily) == running[-1] == progress["totals"]["visits"] == 12_000
    hazards = charts["daily-hazards"]["series"]
    assert sum(hazards[0]["data"]) == hazards[2]["data"][-1] == 3139
    districts = charts["districts"]
    assert len(districts["x"]["data"]) == 10 and districts["x"]["data"][-1] == "未匹配网格"
    assert sum(districts["series"][0]["data"]) == 12_000
    assert sum(districts["series"][3]["data"]) == 724
    data = json.loads(page.split('id="campaign-data">')[1].split("</script>")[0])
    assert data["coverage"] == "/api/v1/campaigns/CA04/coverage" and data["todo"] is None

    en = demo_client.get("/campaigns/CA04", params={"lang": "en"}).text
    assert '<html lang="en">' in en and "Hazards found" in en and "People relocated" in en
    assert _charts(en)["daily-visits"]["x"]["name"] == "Day"
    assert 'href="/campaigns/CA04"' in en and 'href="/campaigns?lang=en"' in en

    listing = demo_client.get("/campaigns").text
    assert listing.count('href="/campaigns/CA') == 10 and "已结束" in listing
    missing = demo_client.get("/campaigns/CA99", params={"lang": "en"})
    assert missing.status_code == 404 and "no campaign with the code CA99" in missing.text
    assert demo_client.get("/campaigns/not%20a%20code").status_code == 422

    # Every role sees the page; a grid worker's own to-visit list goes through the API.
    worker = login_as(demo_engine, "worker", "campaign-worker", grids=("230602001001002",))
    planner = login_as(demo_engine, "planner", "campaign-planner")
    for token, todo in ((worker, "/api/v1/campaigns/CA02/targets?todo=mine&limit=200"),
                        (planner, None)):  # fmt: skip
        seen = demo_client.get("/campaigns/CA02", headers={"Authorization": f"Bearer {token}"})
        assert seen.status_code == 200
        data = json.loads(seen.text.split('id="campaign-data">')[1].split("</script>")[0])
        assert data["todo"] == todo and ('id="todo"' in seen.text) == bool(todo)
        assert "李秀国" not in seen.text  # no household on the page itself


def test_start_page_and_dashboard_link_the_campaign_pages(demo_client):
    start = demo_client.get("/").text
    assert '<a href="/campaigns/CA04">创安四号</a>' in start and 'href="/campaigns"' in start
    dashboard = demo_client.get("/dashboard", params={"lang": "en"}).text
    section = dashboard.split('id="CA05"')[1].split("</section>")[0]
    assert 'href="/campaigns/CA05?lang=en"' in section
    assert "Reports</text>" in section and "Week starting (2023)</text>" in section


def test_campaign_page_draws_charts_and_the_coverage_map_in_chromium(
    live_server, admin_token, demo_client
):
    anonymous = httpx.get(f"{live_server}/campaigns/CA04", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next={quote('/campaigns/CA04', '')}"
    totals = demo_client.get("/api/v1/campaigns/CA04/progress").json()["totals"]
    coverage = demo_client.get("/api/v1/campaigns/CA04/coverage").json()["totals"]
    with offline_page(live_server, admin_token, **SCREEN) as (page, outside, errors):
        page.add_init_script(WATCH)
        page.goto(f"{live_server}/campaigns/CA04")
        page.wait_for_function(
            "() => document.documentElement.dataset.charts === '3' && window.riskgridCoverage"
            " && document.getElementById('coverage-totals').dataset.grids",
            timeout=15_000,
        )
        drawn = page.evaluate(
            """() => [...document.querySelectorAll('[data-chart]')].map(el => {
                 const o = echarts.getInstanceByDom(el).getOption();
                 const c = el.querySelector('canvas');
                 return {name: el.dataset.chart, w: c ? c.clientWidth : 0,
                         h: c ? c.clientHeight : 0,
                         x: o.xAxis[0].name, y: o.yAxis.map(a => a.name),
                         series: o.series.map(s => s.type + ':' + s.name)};
               })"""
        )
        shown = {
            key: int(page.inner_text(f'[data-total="{key}"] .value').replace(",", ""))
            for key in TOTALS
        }
        page.evaluate(
            """() => echarts.getInstanceByDom(document.querySelector('[data-chart=daily-visits]'))
                 .dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0})"""
        )
        tip = page.inner_text("[data-chart=daily-visits] .chart-tooltip")
        grids = page.evaluate(
            """() => { const c = window.riskgridCoverage;
                 const open = c.unvisited.getLayers();
                 open[0].openTooltip();
                 const canvas = document.querySelector('#coverage-map canvas');
                 return {n: c.visited.getLayers().length + open.length, unvisited: open.length,
                         visited: c.visited.getLayers().every(l => l.feature.properties.visited),
                         canvas: canvas.clientWidth,
                         tooltip: document.querySelector('.leaflet-tooltip').innerText}; }"""
        )
        page.screenshot(path=str(ARTIFACTS / "campaign_CA04.png"), full_page=True)
        page.check("#unvisited-only")
        hidden = page.evaluate(
            "() => !window.riskgridCoverageMap.hasLayer(window.riskgridCoverage.visited)"
            " && window.riskgridCoverageMap.hasLayer(window.riskgridCoverage.unvisited)"
        )
        violations = page.evaluate("window.__csp")
    assert [(d["name"], d["x"]) for d in drawn] == [
        ("daily-visits", "日期"),
        ("daily-hazards", "日期"),
        ("districts", "区县"),
    ]
    assert all(d["w"] > 300 and d["h"] > 200 for d in drawn), drawn
    assert drawn[0]["y"] == ["当日走访（次）", "累计走访（次）"]
    assert drawn[0]["series"] == ["bar:当日走访", "line:累计走访"]
    assert shown == {key: totals[key] for key in TOTALS}
    assert "2023-07-25" in tip and "当日走访" in tip and "累计走访" in tip
    assert grids["n"] == coverage["grids"] == 4964
    assert grids["unvisited"] == coverage["grids"] - coverage["grids_visited"] > 0
    assert "萨尔图区" in grids["tooltip"] and "未走访" in grids["tooltip"]
    assert grids["visited"] and grids["canvas"] > 500 and hidden
    assert violations == [] and outside == [] and errors == []


def test_a_grid_workers_page_lists_their_targets_still_to_visit(
    live_server, demo_client, demo_engine
):
    features = demo_client.get("/api/v1/campaigns/CA02/coverage").json()["features"]
    grid = next(f["properties"] for f in features if f["properties"]["targets"] >
                f["properties"]["targets_visited"] + 1)  # fmt: skip
    left = grid["targets"] - grid["targets_visited"]
    worker = login_as(demo_engine, "worker", "campaign-todo", grids=(grid["grid"],))
    with offline_page(live_server, worker, **SCREEN) as (page, outside, errors):
        page.goto(f"{live_server}/campaigns/CA02?lang=en")
        page.wait_for_function("() => document.querySelectorAll('#todo-list tbody tr').length")
        rows = page.eval_on_selector_all(
            "#todo-list tbody tr", "rs => rs.map(r => r.cells[2].textContent)"
        )
        summary = page.inner_text("#todo-summary")
    assert rows == [grid["grid"]] * left and summary == f"{left} in all, the first {left} shown"
    assert outside == [] and errors == []


def test_evaluation_trend_is_drawn_from_its_series(live_server, admin_token):
    with offline_page(live_server, admin_token, **SCREEN) as (page, outside, errors):
        page.add_init_script(WATCH)
        page.goto(f"{live_server}/evaluation?lang=en")
        page.wait_for_function("() => document.documentElement.dataset.charts === '1'")
        option = page.evaluate(
            """() => { const o = echarts.getInstanceByDom(
                 document.querySelector('[data-chart=closure-trend]')).getOption();
                 return {x: o.xAxis[0].name, y: o.yAxis.map(a => a.name),
                         months: o.xAxis[0].data.length,
                         series: o.series.map(s => s.name)}; }"""
        )
        chart = page.locator("[data-chart=closure-trend]")
        chart.screenshot(path=str(ARTIFACTS / "evaluation_trend_en.png"))
        violations = page.evaluate("window.__csp")
    assert option["x"] == "Month" and option["y"] == ["Due to close (reports)", "Rate (%)"]
    assert option["series"] == ["Closure rate", "On-time closure rate", "Due to close"]
    assert option["months"] > 0
    assert violations == [] and outside == [] and errors == []
