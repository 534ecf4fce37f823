"""The dispatcher's console and a report's page in Chromium at 1366×768, offline: accept and
bulk-dispatch two reports to a department's handler, place an unassigned report on a grid
picked on the map, merge a duplicate, set 督办; a worker and a dispatcher see only their moves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_photos import photo
from tests.api.test_reports import EAST, WEST, grids, report  # noqa: F401 - the grids fixture
from tests.factories import login_as, point_m
from tests.web.conftest import ARTIFACTS, offline_page, serving

GAS = "燃气公司"
SCREEN = {"viewport": {"width": 1366, "height": 768}}


@pytest.fixture
def live(grids, settings, tmp_path):  # noqa: F811 - the fixture imported above
    """A live server on the test database with the two grids, and a dispatcher, a worker of
    WEST and two gas company users: (base url, tokens, API clients)."""

    photos = PhotoSettings(folder=tmp_path / "photos")
    app = create_app(settings.model_copy(update={"photos": photos}), engine=grids)
    tokens = {
        "dispatcher": login_as(grids, "dispatcher", "zhao-zz"),
        "worker": login_as(grids, "worker", "wang-wgy", grids=(WEST,)),
        "gas": login_as(grids, "department", "qian-rq", department=GAS),
    }
    login_as(grids, "department", "sun-rq", department=GAS)
    clients = {
        w: TestClient(app, headers={"Authorization": f"Bearer {t}"}) for w, t in tokens.items()
    }
    with serving(app) as base:
        yield base, tokens, clients


def send(c: TestClient, x: float, y: float = 50.0, **kw) -> str:
    r = c.post("/api/v1/reports", json=report(x, y, **kw))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def get(c: TestClient, rid: str) -> dict:
    r = c.get(f"/api/v1/reports/{rid}")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_dispatcher_works_the_queues(live):
    base, tokens, api = live
    w, d = api["worker"], api["dispatcher"]
    a, b = send(w, 100), send(w, 400)
    lost = send(w, 1600, 250)  # 600 m east of EAST: no grid
    original = send(w, 250, 250)
    dup = send(w, 250, 250, description="同一处漏气")
    with offline_page(base, tokens["dispatcher"], **SCREEN) as (page, outside, errors):
        page.goto(f"{base}/console")
        for rid in (a, b):
            page.check(f'input.pick[value="{rid}"]')
        page.click("#bulk-accept")
        page.wait_for_selector("#bulk-summary:has-text('已办理 2 条')")
        for rid in (a, b):
            assert page.get_attribute(f'tr[data-id="{rid}"]', "data-status") == "accepted"
        assert get(d, a)["status"] == get(d, b)["status"] == "accepted"
        for rid in (a, b):
            page.check(f'input.pick[value="{rid}"]')
        page.select_option("#bulk-department", GAS)
        page.wait_for_selector('#bulk-handler option[value="qian-rq"]', state="attached")
        page.select_option("#bulk-handler", "qian-rq")
        page.click("#bulk-dispatch")
        for rid in (a, b):
            page.wait_for_selector(f'tr[data-id="{rid}"][data-status="dispatched"]')
        assert "已办理 2 条，失败 0 条" in page.inner_text("#bulk-summary")
        assert "已派遣 · 燃气公司 · qian-rq" in page.inner_text(f'tr[data-id="{a}"] .result')
        page.screenshot(path=str(ARTIFACTS / "console_dispatched.png"))
        for rid in (a, b):
            sent = get(d, rid)
            assert (sent["status"], sent["department"], sent["handler"]) == (
                "dispatched",
                GAS,
                "qian-rq",
            )

        page.goto(f"{base}/console?queue=unassigned")
        page.click(f'button.place[data-id="{lost}"]')
        page.wait_for_function(
            f"() => window.riskgridPlaceGrids.getLayers().some("
            f"l => l.feature.properties.code === '{EAST}')"
        )
        x, y = page.evaluate(
            f"""() => {{
              const l = window.riskgridPlaceGrids.getLayers()
                .find(l => l.feature.properties.code === '{EAST}');
              const p = window.riskgridPlaceMap.latLngToContainerPoint(l.getBounds().getCenter());
              const box = document.getElementById('place-map').getBoundingClientRect();
              return [box.left + p.x, box.top + p.y];
            }}"""
        )
        box = page.locator("#place-map").bounding_box()
        assert box["x"] < x < box["x"] + box["width"] and box["y"] < y < box["y"] + box["height"]
        page.mouse.click(x, y)
        page.wait_for_selector(f"#place-confirm:has-text('{EAST}')")
        page.screenshot(path=str(ARTIFACTS / "console_unassigned.png"))
        page.click("#place-confirm")
        page.wait_for_selector(f'tr[data-id="{lost}"] .result:has-text("{EAST}")')
        placed = get(d, lost)
        assert placed["grid"]["code"] == EAST and placed["assignment"]["method"] == "manual"

        page.goto(f"{base}/console?queue=duplicates")
        pair = f'.pair[data-id="{dup}"]'
        assert page.locator(pair).get_attribute("data-original") == original
        assert "同一处漏气" in page.locator(pair).inner_text()
        page.screenshot(path=str(ARTIFACTS / "console_duplicates.png"))
        page.click(f"{pair} button.merge")
        page.wait_for_selector(f"{pair}.decided")
        merged = get(d, dup)
        assert (merged["status"], merged["duplicate_of"]) == ("duplicate", original)

        page.goto(f"{base}/console/reports/{original}")
        page.fill("form.supervision input[name=note]", "今日办结")
        page.click("#supervise")
        page.wait_for_selector("#supervised")
        page.wait_for_function("() => window.riskgridReportGrid !== undefined")
        page.screenshot(path=str(ARTIFACTS / "console_report.png"))
        assert get(d, original)["supervision"]["note"] == "今日办结"
    assert outside == [] and errors == []


def test_the_report_page_offers_each_viewer_only_their_moves(live):
    base, tokens, api = live
    d, gas = api["dispatcher"], api["gas"]
    rid = send(api["worker"], 100)
    waiting = send(api["worker"], 400)
    for to, who, kw in (
        ("accepted", d, {}),
        ("dispatched", d, {"department": GAS}),
        ("in_progress", gas, {}),
    ):
        r = who.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})
        assert r.status_code == 200, r.text
    shot = photo(at=point_m(100, 60), taken=None)  # taken 10 m from the reported point
    up = gas.post(
        f"/api/v1/reports/{rid}/photos",
        files={"file": ("after.jpg", shot, "image/jpeg")},
        data={"kind": "after"},
    )
    assert up.status_code == 201, up.text
    r = gas.post(f"/api/v1/reports/{rid}/transitions", json={"to": "resolved", "level": "grid"})
    assert r.status_code == 200, r.text

    def offered(token: str, report_id: str) -> tuple[list[str], bool]:
        with offline_page(base, token, **SCREEN) as (page, outside, errors):
            page.goto(f"{base}/console/reports/{report_id}")
            page.wait_for_selector("#history li")
            moves = page.eval_on_selector_all("form.move", "fs => fs.map(f => f.dataset.to)")
            supervise = page.locator("#supervise").count() == 1
            assert outside == [] and errors == []
            return sorted(moves), supervise

    assert offered(tokens["worker"], rid) == (["in_progress", "verified"], False)
    assert offered(tokens["dispatcher"], rid) == (["in_progress", "verified"], True)
    assert offered(tokens["worker"], waiting) == ([], False)
    assert offered(tokens["dispatcher"], waiting) == (["accepted", "duplicate", "rejected"], True)
    with offline_page(base, tokens["worker"], **SCREEN) as (page, _, errors):
        page.goto(f"{base}/console/reports/{rid}")
        page.fill("form.move[data-to=in_progress] input[name=reason]", "阀门仍漏气")
        page.click("form.move[data-to=in_progress] button[type=submit]")
        page.wait_for_selector("#history li:has-text('阀门仍漏气')")
        assert "拍摄点距上报点 10" in page.locator("#photos").inner_text()
        page.wait_for_function("() => document.querySelector('#photos img').naturalWidth > 0")
        page.screenshot(path=str(ARTIFACTS / "console_report_worker.png"))
        assert errors == []
    assert get(d, rid)["rework_count"] == 1
