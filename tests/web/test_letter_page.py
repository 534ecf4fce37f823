"""A risk letter in Chromium (issue 15, item 4): drafted on the demo for 住房和城乡建设局,
issued, and read by that department: the number, the map drawn on the server (grids by Gi*
class, open reports, legend, scale bar in metres), every asset from riskgrid itself, no error;
a screenshot in tests/artifacts/letter.png."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from tests.factories import login_as
from tests.web.conftest import ARTIFACTS, offline_page

HOUSING = "住房和城乡建设局"


def test_the_department_reads_its_issued_letter_with_its_map(demo_client, demo_engine, live_server):
    with demo_engine.connect() as conn:
        until = conn.execute(
            text("SELECT max(reported_at) FROM reports WHERE department = :d"), {"d": HOUSING}
        ).scalar_one()
    # The demo's last 120 days of housing reports (weekly slices for the trend).
    since = until - timedelta(days=120)
    body = {"department": HOUSING, "since": since.isoformat(), "until": until.isoformat()}
    drafted = demo_client.post("/api/v1/letters", json=body)
    assert drafted.status_code == 201, drafted.text
    url = drafted.json()["url"]
    issued = demo_client.post(f"{url}/issue").json()
    with demo_engine.connect() as conn:
        drawn = conn.execute(
            text("SELECT content->'map' FROM letters WHERE id = :id"), {"id": issued["id"]}
        ).scalar_one()
    token = login_as(demo_engine, "department", "web-housing", department=HOUSING)
    with offline_page(live_server, token, viewport={"width": 1000, "height": 1400}) as (
        page,
        outside,
        errors,
    ):
        answer = page.goto(f"{live_server}{url}?format=html")
        assert answer is not None and answer.status == 200
        assert page.locator("#letter-number").inner_text() == issued["number"]
        assert page.locator(".addressee").inner_text() == f"{HOUSING}："
        grids = page.locator("#letter-map svg g.grids path")
        assert grids.count() > 0
        classed = page.locator("#letter-map svg g.grids path:not([fill='none'])").count()
        assert classed == sum(1 for g in drawn["grids"] if g["class"]) and classed > 0
        dots = page.locator("#letter-map svg g.reports circle").count()
        assert dots == len(drawn["dots"]) > 0
        legend = page.locator("#letter-map svg g.legend").text_content() or ""
        assert "热点 99%" in legend and "超期事件" in legend
        assert " m" in (page.locator("#letter-map svg g.scale-bar").text_content() or "")
        box = page.locator("#letter-map svg").bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 350
        assert page.locator("#open-reports table tr").count() > 1
        assert page.locator("a", has_text="PDF").get_attribute("href") == f"{url}?format=pdf"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "letter.png"), full_page=True)
    assert outside == [] and errors == []
