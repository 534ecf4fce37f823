"""The phone's visit page (/report/visit) and its shared outbox in Chromium, tried as a hostile
user would: markup in a campaign's name, its checklist and its targets shown as text wherever
the page writes them; two workers on one phone, each seeing none of the other's copies
(households) or waiting visits, the copies gone at logout from any page; a phone offline long
enough to keep more reports than the API takes in one batch."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_visits import place, world  # noqa: F401 - the place and its emptying
from tests.factories import clients_for, login_as
from tests.geo.campaigns.place import A1, B1, C1, D_A, D_B, at, campaign_body
from tests.web.conftest import phone_context, serving, session_cookie

EVIL = "</script><!--<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
HOUSEHOLDS = {"register": "households", "filter": {"living_alone_over": 60}}
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
RUNNING = {"starts_on": str(TODAY - timedelta(days=1)), "ends_on": str(TODAY + timedelta(days=30))}
CACHED = """async () => {
  const out = [];
  if (!(await caches.has('riskgrid.phone.v1'))) return out;
  const cache = await caches.open('riskgrid.phone.v1');
  for (const request of await cache.keys()) {
    out.push(request.url + ' ' + await (await cache.match(request)).text());
  }
  return out;
}"""


@pytest.fixture(scope="module")
def app(place, test_database, tmp_path_factory):  # noqa: F811 - the fixture imported above
    rules = PhotoSettings(folder=tmp_path_factory.mktemp("photos"))
    # A deployment that takes 40 reports a batch (reports.max_batch; 1,000 by default), fewer
    # than the phone's own 100: the phone learns it from GET /api/v1/themes.
    reports = test_database[0].reports.model_copy(update={"max_batch": 40})
    settings = test_database[0].model_copy(update={"photos": rules, "reports": reports})
    return create_app(settings, engine=place)


@pytest.fixture
def people(app, world):  # noqa: F811
    tokens = {
        "li": login_as(world, "worker", "li-wgy", grids=(A1,)),
        "wang": login_as(world, "worker", "wang-wgy", grids=(B1,)),
        "admin": login_as(world, "admin", "qian-gl"),
    }
    with clients_for(app, tokens) as clients:
        yield tokens, clients


def launch(admin, **over) -> None:
    """Create campaign `over['code']`, running from yesterday for a month, and launch it."""
    body = campaign_body(**{**RUNNING, **over})
    assert admin.post("/api/v1/campaigns", json=body).status_code == 201
    assert admin.post(f"/api/v1/campaigns/{body['code']}/launch").status_code == 200


def phone(base: str, token: str, grid: str = A1):
    context, page = phone_context(base, token, *at(grid))
    trouble: list[str] = []
    page.on("pageerror", lambda e: trouble.append(str(e)))
    page.on("dialog", lambda d: (trouble.append("dialog " + d.message), d.dismiss()))
    return context, page, trouble


def ready(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", state="attached")


def test_markup_in_names_labels_and_targets_is_shown_as_text(app, people):
    tokens, clients = people
    checklist = [{"code": "exit_clear", "label": "出口" + EVIL, "answer": "yes_no",
                  "required": True}]  # fmt: skip
    launch(clients["admin"], code="CA21", name="行动" + EVIL, theme="fire", categories=[],
           targets={"register": "workshops"}, checklist=checklist)  # fmt: skip
    lon, lat = at(A1)
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
             "properties": {"ref": "W1", "name": "作坊" + EVIL}}  # fmt: skip
    fc = {"type": "FeatureCollection", "features": [point]}
    assert clients["admin"].post("/api/v1/campaigns/CA21/targets", json=fc).status_code == 200
    with serving(app) as live:
        context, page, trouble = phone(live, tokens["li"])
        ready(page, f"{live}/report/visit")
        page.wait_for_selector("#target[data-count='1']", state="attached")
        option = page.inner_text("#campaign option")
        target = page.eval_on_selector_all("#target option", "os => os.map(o => o.textContent)")
        page.click("#send")  # the required item unanswered: named in the message
        unanswered = page.inner_text("#result")
        # A visit the API refuses (a point in another district) is listed with its words.
        page.check("input[name='answer-CA21-exit_clear'][value='yes']")
        page.select_option("#target", index=1)
        page.fill("#lon", f"{at(C1)[0]:.7f}")
        page.fill("#lat", f"{at(C1)[1]:.7f}")
        page.click("#send")
        page.wait_for_selector("#visit-refused[data-count='1']", state="attached")
        refused = page.inner_text("#visit-refused li")
        injected = page.evaluate(
            "[window.__xss || 0, document.querySelectorAll('img[src=\"x\"]').length,"
            " document.querySelectorAll('script:not([src]):not([type=\"application/json\"])')"
            ".length]"
        )
        context.close()
    assert trouble == [] and injected == [0, 0, 0]
    assert option == f"行动{EVIL} (CA21)"
    assert target[1] == f"W1 · 作坊{EVIL}"
    assert f"出口{EVIL}" in unanswered
    assert f"行动{EVIL}" in refused and f"作坊{EVIL}" in refused


def _offline_visit(page, target_ref: str) -> None:
    """Record a visit to `target_ref` with the phone offline (it waits in the outbox)."""
    value = page.eval_on_selector_all(
        "#target option",
        "(os, ref) => (os.find(o => o.textContent.startsWith(ref)) || {}).value",
        target_ref,
    )
    page.check("input[name='answer-CA11-low_lying'][value='yes']")
    page.select_option("#target", value)
    page.click("#gps")
    page.wait_for_function("() => document.getElementById('lon').value !== ''")
    page.click("#send")
    page.wait_for_selector("#visit-outbox[data-count='1']", state="attached")


def test_two_workers_on_one_phone_see_nothing_of_each_others_households_or_visits(
    app,
    people,
    world,  # noqa: F811
):
    tokens, clients = people
    launch(clients["admin"], code="CA11", targets=HOUSEHOLDS, districts=[D_A, D_B])
    launch(clients["admin"], code="CA12", name="第二轮", targets=HOUSEHOLDS, districts=[D_A, D_B])
    with serving(app) as live:
        context, page, trouble = phone(live, tokens["li"])
        ready(page, f"{live}/report/visit")
        page.wait_for_function("() => document.body.dataset.offlineReady === '1'")
        page.wait_for_selector("#target[data-via='sw'][data-count='3']", state="attached")
        page.select_option("#campaign", "CA12")  # both lists of li's households kept
        page.wait_for_selector("#target[data-campaign='CA12'][data-count='3']", state="attached")
        page.select_option("#campaign", "CA11")
        page.wait_for_selector("#target[data-campaign='CA11'][data-count='3']", state="attached")
        li_kept = page.evaluate(CACHED)
        context.set_offline(True)
        _offline_visit(page, "HH000")
        # li's session ends without a logout; wang logs in on the same phone.
        context.clear_cookies()
        context.add_cookies([session_cookie(live, tokens["wang"])])
        context.set_offline(False)
        ready(page, f"{live}/report/visit")
        page.wait_for_selector("#target[data-campaign='CA11'][data-count='2']", state="attached")
        page.wait_for_function("() => document.body.dataset.offlineReady === '1'")
        wang_sees = page.inner_text("body")
        wang_waiting = page.get_attribute("#visit-outbox", "data-count")
        wang_kept = page.evaluate(CACHED)
        # Offline, the other campaign's list is not li's households.
        context.set_offline(True)
        page.select_option("#campaign", "CA12")
        page.wait_for_selector("#target[data-campaign='CA12']", state="attached")
        offline_options = page.inner_text("#target")
        context.set_offline(False)
        with world.connect() as conn:
            sent_as_wang = conn.execute(text("SELECT count(*) FROM visits")).scalar_one()
        # wang logs out from a page that is no phone page: the copies go with the login.
        page.goto(f"{live}/notifications")
        page.click("nav.site-nav form.logout button")
        page.wait_for_url(f"{live}/login**")
        after_logout = page.evaluate(CACHED)
        # li logs in again: their visit goes out under their name.
        context.add_cookies([session_cookie(live, tokens["li"])])
        ready(page, f"{live}/report/visit")
        page.wait_for_selector("#visit-outbox[data-count='0']", state="attached")
        context.close()
    li_households = ("住户0", "住户1", "住户2")
    assert any("住户0" in entry for entry in li_kept)  # what the check below would find
    assert trouble == []
    assert wang_waiting == "0" and not any(h in wang_sees for h in li_households)
    assert not any(h in entry for entry in wang_kept for h in li_households)
    assert any("住户6" in entry for entry in wang_kept)  # wang's own list is kept
    assert not any(h in offline_options for h in li_households)
    assert sent_as_wang == 0
    assert after_logout == []
    with world.connect() as conn:
        visitors = conn.execute(
            text(
                "SELECT v.visitor, t.ref FROM visits v "
                "JOIN campaign_targets t ON t.id = v.target_id"
            )
        ).all()
    assert [tuple(v) for v in visitors] == [("li-wgy", "HH000")]


def test_more_reports_kept_offline_than_a_batch_takes_go_out_in_batches(app, people, world):  # noqa: F811
    tokens, _ = people
    lon, lat = at(A1)
    kept = [
        {"id": str(uuid.uuid4()), "lon": lon, "lat": lat, "theme": "flood",
         "category": "waterlogging", "description": f"离线上报{i}"}
        for i in range(150)
    ]  # fmt: skip
    with serving(app) as live:
        context, page, trouble = phone(live, tokens["li"])
        page.goto(f"{live}/login")
        page.evaluate(
            "items => localStorage.setItem('riskgrid.outbox.li-wgy', JSON.stringify(items))", kept
        )
        ready(page, f"{live}/report")
        page.wait_for_selector("#outbox[data-count='0']", state="attached", timeout=8000)
        said = page.inner_text("#result")
        context.close()
    with world.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM reports WHERE reporter = 'li-wgy'")
        ).scalar_one()
    assert trouble == [] and stored == 150
    assert "150" in said
