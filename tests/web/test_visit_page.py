"""走访 on the phone (/report/visit): the launched campaigns of the worker's districts with their
checklists as inputs by answer kind, the rights of the page, and in Chromium (a 390×800 phone)
a visit recorded offline with its answers, target and a hazard with a photo, sent once back
online through a lost answer (the resend replays it, nothing stored twice), and a visit the
API refuses kept on the phone with the API's words, not sent again."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_photos import photo
from tests.api.test_visits import place, world  # noqa: F401 - the place and its emptying
from tests.factories import clients_for, login_as
from tests.geo.campaigns.place import A1, C1, D_A, D_C, at, campaign_body
from tests.web.conftest import ARTIFACTS, phone_context, serving

HOUSEHOLDS = {"register": "households", "filter": {"living_alone_over": 60}}


@pytest.fixture(scope="module")
def app(place, test_database, tmp_path_factory):  # noqa: F811 - the fixture imported above
    rules = PhotoSettings(folder=tmp_path_factory.mktemp("photos"))
    return create_app(test_database[0].model_copy(update={"photos": rules}), engine=place)


@pytest.fixture
def people(app, world):  # noqa: F811
    """Tokens and API clients of a worker of A1, a city-wide dispatcher, a department user
    and an admin; campaign CA11 (districts A and B, households to visit) launched."""
    tokens = {
        "worker": login_as(world, "worker", "li-wgy", grids=(A1,)),
        "dispatcher": login_as(world, "dispatcher", "zhao-zz"),
        "department": login_as(world, "department", "sun-sw", department="水务局"),
        "admin": login_as(world, "admin", "qian-gl"),
    }
    with clients_for(app, tokens) as clients:
        campaign(clients["dispatcher"], targets=HOUSEHOLDS)
        yield tokens, clients


def campaign(dispatcher, launch: bool = True, **over) -> None:
    """Create campaign `over['code']` (CA11 by default) and launch it."""
    body = campaign_body(**over)
    assert dispatcher.post("/api/v1/campaigns", json=body).status_code == 201
    if launch:
        assert dispatcher.post(f"/api/v1/campaigns/{body['code']}/launch").status_code == 200


def test_the_page_shows_the_checklists_of_the_campaigns_running_in_the_workers_districts(
    people,
):
    _, clients = people
    boss = clients["dispatcher"]
    campaign(boss, code="CA12", name="让胡路排查", districts=[D_C])  # not the worker's district
    campaign(boss, code="CA13", name="草稿行动", districts=[D_A], launch=False)
    campaign(boss, code="CA14", name="暂停行动", districts=[D_A])
    assert boss.post("/api/v1/campaigns/CA14/pause").status_code == 200
    r = clients["worker"].get("/report/visit")
    page = r.text
    assert r.status_code == 200 and "geolocation=(self)" in r.headers["permissions-policy"]
    assert re.findall(r'<option value="(CA\d+)">', page) == ["CA11"]
    assert re.findall(r'data-campaign="(CA\d+)"', page) == ["CA11"]
    # One input per checklist item, by its answer kind: yes/no, number (whole for a tally), text.
    inputs = _inputs(page)
    assert [
        (i["type"], i["value"]) for i in inputs if i.get("name") == "answer-CA11-low_lying"
    ] == [
        ("radio", "yes"),
        ("radio", "no"),
    ]
    by_id = {i["id"]: i for i in inputs if "id" in i}
    assert by_id["answer-CA11-to_relocate"]["type"] == "number"
    assert by_id["answer-CA11-to_relocate"]["step"] == "1"  # a tally: whole numbers
    assert by_id["answer-CA11-households_moved"]["type"] == "number"
    assert by_id["answer-CA11-note"]["type"] == "text"
    assert by_id["answer-CA11-note"]["maxlength"] == "500"
    assert re.search(r'data-code="low_lying" data-answer="yes_no"\s+data-label="低洼易涝" '
                     r'data-required="1"', page)  # fmt: skip
    assert 'data-targets="mine"' in page
    # The tabs, 走访 the current one; the page and its script among what the service worker keeps.
    nav = page.split('<nav class="phone-tabs"')[1].split("</nav>")[0]
    tabs = re.findall(r'<a href="([^"]*)"( aria-current="page")?>([^<]+)</a>', nav)
    assert [(h, label) for h, _, label in tabs] == [
        ("/report", "上报"), ("/report/visit", "走访"), ("/report/mine", "我的上报"),
        ("/report/checks", "核查任务"),
    ]  # fmt: skip
    assert [h for h, current, _ in tabs if current] == ["/report/visit"]
    keep = re.search(r"data-keep='([^']+)'", page).group(1)
    assert '"/report/visit"' in keep and "/static/js/visit.js?v=" in keep
    english = clients["worker"].get("/report/visit", params={"lang": "en"}).text
    assert "<h1>Campaign visit</h1>" in english and ">Visits</a>" in english
    # An admin records visits for every launched campaign, without a worker's target list.
    admin = clients["admin"].get("/report/visit").text
    assert re.findall(r'<option value="(CA\d+)">', admin) == ["CA11", "CA12"]
    assert 'data-targets=""' in admin


def test_the_page_is_for_those_who_make_visits(app, people):
    _, clients = people
    for who in ("department", "dispatcher"):
        r = clients[who].get("/report/visit")
        assert r.status_code == 403 and "走访排查由网格员在现场记录" in r.text, who
        assert 'id="visit-form"' not in r.text
    with TestClient(app) as anonymous:
        report = anonymous.get("/report", follow_redirects=False)
        visit = anonymous.get("/report/visit", follow_redirects=False)
    # Not logged in: the login page, which brings them back, as the report form does.
    assert report.status_code == visit.status_code == 303
    assert visit.headers["location"] == "/login?next=%2Freport%2Fvisit"
    assert report.headers["location"] == "/login?next=%2Freport"


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "input":
            self.found.append(dict(attrs))


def _inputs(page: str) -> list[dict]:
    """Return the attributes of the page's <input> elements, in order."""
    parser = _Inputs()
    parser.feed(page)
    return parser.found


def _visits(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT v.id, v.answers, v.leaflets, v.stickers, v.visited_at, v.grid_code, "
                "t.ref FROM visits v LEFT JOIN campaign_targets t ON t.id = v.target_id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def _hazards(engine, visit_id) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.id, r.category, r.description, r.campaign_code, r.reporter, "
                "(SELECT count(*) FROM report_photos p WHERE p.report_id = r.id) AS photos "
                "FROM reports r WHERE r.visit_id = :v"
            ),
            {"v": visit_id},
        ).mappings()
        return [dict(r) for r in rows]


def test_a_visit_recorded_offline_is_sent_once_back_online_and_a_refused_one_is_kept(
    app,
    people,
    world,  # noqa: F811
    tmp_path,
):
    tokens, clients = people
    worker = clients["worker"]
    todo = worker.get("/api/v1/campaigns/CA11/targets", params={"todo": "mine"}).json()["targets"]
    target = next(t for t in todo if t["ref"] == "HH001")
    jpeg = tmp_path / "hazard.jpg"
    jpeg.write_bytes(photo(seed=7, at=at(A1)))
    home = tmp_path / "home.jpg"
    home.write_bytes(photo(seed=8, at=at(A1)))
    statuses: list[int] = []
    lost: list[int] = []

    def lose_the_first_answer(route):
        # The server stores the visit; the phone never hears back (a dropped connection).
        if not lost:
            lost.append(route.fetch().status)
            route.abort()
        else:
            route.continue_()

    with serving(app) as live:
        context, page = phone_context(live, tokens["worker"], *at(A1))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "response",
            lambda r: statuses.append(r.status) if r.url.endswith("/api/v1/visits") else None,
        )
        page.goto(f"{live}/report/visit")
        page.wait_for_function("() => document.body.dataset.offlineReady === '1'")
        # The targets asked for again through the service worker, which keeps them.
        page.wait_for_selector("#target[data-via='sw'][data-count='3']", state="attached")
        context.set_offline(True)
        page.reload()  # the service worker's copy: checklist, targets, taxonomy
        page.wait_for_selector("body[data-ready='1']")
        offline_note = page.is_visible("#offline-copy")
        offline_targets = page.eval_on_selector_all("#target option", "os => os.map(o => o.value)")
        page.click("#send")  # nothing answered yet: the required item is named
        unanswered = page.inner_text("#result")
        page.check("input[name='answer-CA11-low_lying'][value='yes']")
        page.fill("#answer-CA11-to_relocate", "2")
        page.fill("#answer-CA11-note", "独居老人，已告知转移路线")
        page.select_option("#target", target["id"])
        page.click("#gps")
        page.wait_for_function("() => document.getElementById('lon').value !== ''")
        page.fill("#leaflets", "2")
        page.fill("#stickers", "1")
        page.click("#add-hazard")
        page.select_option(".hazard .hazard-category", "waterlogging")
        page.fill(".hazard .hazard-description", "地下室入口低洼积水")
        page.set_input_files(".hazard .hazard-photo", str(jpeg))
        page.set_input_files("#visit-photo", str(home))  # the visit's own evidence
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone_visit_form.png"), full_page=True)
        page.click("#send")
        page.wait_for_selector("#visit-outbox[data-count='1']", state="attached")
        left_to_pick = page.eval_on_selector_all("#target option", "os => os.map(o => o.value)")
        # A second visit, typed in at a point outside the campaign's districts.
        page.check("input[name='answer-CA11-low_lying'][value='no']")
        lon, lat = at(C1)
        page.fill("#lon", f"{lon:.7f}")
        page.fill("#lat", f"{lat:.7f}")
        page.click("#send")
        page.wait_for_selector("#visit-outbox[data-count='2']", state="attached")
        page.reload()  # still offline: both wait on the phone, the photo too
        page.wait_for_selector("body[data-ready='1']")
        kept = page.evaluate(
            "[document.getElementById('visit-outbox').dataset.count,"
            " document.getElementById('photo-outbox').dataset.count]"
        )
        page.route("**/api/v1/visits", lose_the_first_answer)
        online_at = datetime.now(UTC)
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        for _ in range(500):  # until the first send has been answered and its answer lost
            if lost:
                break
            page.wait_for_timeout(20)
        page.evaluate("window.dispatchEvent(new Event('online'))")  # the next try
        page.wait_for_selector("#visit-outbox[data-count='0']", state="attached")
        page.wait_for_selector("#visit-refused[data-count='1']", state="attached")
        page.wait_for_selector("#photo-outbox[data-count='0']", state="attached")
        said = page.inner_text("#result")
        refused = page.inner_text("#visit-refused li")
        page.screenshot(path=str(ARTIFACTS / "phone_visit.png"), full_page=True)
        page.reload()  # online: the refused visit is shown again, not sent again
        page.wait_for_selector("body[data-ready='1']")
        still_refused = page.get_attribute("#visit-refused", "data-count")
        page.click("#visit-refused button.dismiss")
        page.wait_for_selector("#visit-refused[data-count='0']", state="attached")
        # A visit kept offline goes out from whichever tab is open: here the report form's.
        context.set_offline(True)
        page.check("input[name='answer-CA11-low_lying'][value='no']")
        page.click("#gps")
        page.wait_for_function("() => document.getElementById('lon').value !== ''")
        page.click("#send")
        page.wait_for_selector("#visit-outbox[data-count='1']", state="attached")
        page.goto(f"{live}/report")
        page.wait_for_selector("body[data-ready='1']")
        context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_selector("#result:has-text('已补发 1 条走访记录')")
        context.close()
    assert errors == [] and offline_note
    assert (
        offline_targets[0] == "" and target["id"] in offline_targets and len(offline_targets) == 4
    )
    assert "请回答必答项：低洼易涝" in unanswered
    assert target["id"] not in left_to_pick  # visited: not offered again
    assert kept == ["2", "2"]
    # The first send was stored (201) and its answer lost; the resend replayed it (200).
    # Then the visit sent from the report form (201), nothing more: the refused one not resent.
    assert lost == [201] and statuses == [200, 422, 201]
    assert "已发送 1 条走访记录" in said
    assert "1 条走访未被接受" in said and "已发送照片 2 张" in said
    assert "HTTP 422" in refused and "outside campaign CA11's districts" in refused
    assert still_refused == "1"
    stored, later = sorted(_visits(world), key=lambda v: v["visited_at"])
    assert later["answers"] == {"low_lying": False} and later["ref"] is None
    assert stored["answers"] == {
        "low_lying": True,
        "to_relocate": 2,
        "note": "独居老人，已告知转移路线",
    }
    assert (stored["leaflets"], stored["stickers"], stored["ref"]) == (2, 1, "HH001")
    assert stored["grid_code"] == A1 and stored["visited_at"] < online_at
    [hazard] = _hazards(world, stored["id"])
    assert (hazard["category"], hazard["description"]) == ("waterlogging", "地下室入口低洼积水")
    assert hazard["campaign_code"] == "CA11" and hazard["reporter"] == "li-wgy"
    assert hazard["photos"] == 1
    with world.connect() as conn:
        own = conn.execute(
            text("SELECT count(*) FROM visit_photos WHERE visit_id = :v"), {"v": stored["id"]}
        ).scalar_one()
    assert own == 1
    left = worker.get("/api/v1/campaigns/CA11/targets", params={"todo": "mine"}).json()
    assert target["id"] not in [t["id"] for t in left["targets"]] and left["total"] == 2
    assert isinstance(stored["id"], uuid.UUID)
