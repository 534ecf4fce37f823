"""The department inbox `/inbox` (issue 14, item 6): a department user sees their department's
tasks and no other's, filters mine / unassigned / all with counts, late and 督办 first and
marked; takes one up, returns one with a reason, resolves one with a level and an `after` photo
chosen in the page; in Chromium at 1366×768, with screenshots in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_reports import WEST, grids, report  # noqa: F401 - the grids fixture
from tests.factories import login_as
from tests.web.conftest import ARTIFACTS, offline_page, serving

GAS, FIRE = "燃气公司", "消防救援支队"
OFFICE = {"viewport": {"width": 1366, "height": 768}}


@pytest.fixture(scope="module")
def app(test_database, tmp_path_factory):
    settings, engine = test_database
    rules = PhotoSettings(folder=tmp_path_factory.mktemp("inbox-photos"))
    return create_app(settings.model_copy(update={"photos": rules}), engine=engine)


@pytest.fixture(scope="module")
def live(app):
    """A live server of `app` (the per-test database behind it): its base address."""
    with serving(app) as base:
        yield base


def _client(app, token: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def _move(c: TestClient, rid: str, to: str, **kw) -> dict:
    r = c.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def world(app, db, grids):  # noqa: F811 - the fixture imported above
    """Gas tasks: mine (qian-rq's), sun-rq's, one nobody's, one late and under 督办, one in
    progress (mine), one resolved; and one task of the fire brigade."""
    tokens = {
        "worker": login_as(db, "worker", "wang-wgy", grids=(WEST,)),
        "dispatcher": login_as(db, "dispatcher", "zhao-zz"),
        "qian": login_as(db, "department", "qian-rq", department=GAS),
        "sun": login_as(db, "department", "sun-rq", department=GAS),
        "fire": login_as(db, "department", "li-xf", department=FIRE),
    }
    ids: dict[str, str] = {}
    with _client(app, tokens["worker"]) as w, _client(app, tokens["dispatcher"]) as d:
        for i, name in enumerate(("mine", "suns", "free", "late", "working", "done", "fires")):
            r = w.post("/api/v1/reports", json=report(x=60 + 50 * i, description=f"任务 {name}"))
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
            _move(d, ids[name], "accepted")
        handlers = {"mine": "qian-rq", "suns": "sun-rq", "working": "qian-rq", "done": "qian-rq"}
        for name, rid in ids.items():
            dept = FIRE if name == "fires" else GAS
            _move(d, rid, "dispatched", department=dept, handler=handlers.get(name))
        r = d.put(f"/api/v1/reports/{ids['late']}/supervision", json={"note": "今日必须处置"})
        assert r.status_code == 200, r.text
    with _client(app, tokens["qian"]) as q:
        _move(q, ids["working"], "in_progress")
        _move(q, ids["done"], "in_progress")
    with db.begin() as conn:
        conn.execute(
            text("UPDATE reports SET due_at = now() - interval '3 hours' WHERE id = :id"),
            {"id": ids["late"]},
        )
        # The resolved one: its after photo recorded directly (the page's upload is tested below).
        conn.execute(
            text(
                "UPDATE reports SET status = 'resolved', resolution_level = 'street' WHERE id = :id"
            ),
            {"id": ids["done"]},
        )
    return {"tokens": tokens, "ids": ids}


def _shown(page) -> list[str]:
    return page.eval_on_selector_all("li.task", "els => els.map(e => e.dataset.id)")


def _counts(page) -> dict[str, int]:
    pairs = page.eval_on_selector_all(
        ".tabs a", "els => els.map(e => [e.dataset.tab, e.querySelector('.count').textContent])"
    )
    return {k: int(v) for k, v in pairs}


def _only_refusals(errors: list[str], *statuses: int) -> list[str]:
    """The page's errors but Chromium's notes of the refusals a test asks for on purpose."""
    said = tuple(f"responded with a status of {s} " for s in statuses)
    return [e for e in errors if not any(s in e for s in said)]


def _jpeg(path: Path) -> Path:
    Image.new("RGB", (320, 240), (40, 140, 90)).save(path, "JPEG", quality=85)
    return path


def test_a_department_user_sees_their_tasks_late_and_supervised_first(live, world):
    ids, tokens = world["ids"], world["tokens"]
    with offline_page(live, tokens["qian"], **OFFICE) as (page, outside, errors):
        page.goto(f"{live}/inbox")
        shown = _shown(page)
        gas = {ids[k] for k in ("mine", "suns", "free", "late", "working", "done")}
        assert set(shown) == gas and ids["fires"] not in shown
        assert shown[0] == ids["late"]  # late and under 督办 first
        assert shown[-1] == ids["done"]  # waiting for 核查 last, read-only
        first = page.locator("li.task").first
        assert first.locator(".mark.late").inner_text() == "超期"
        assert first.locator(".mark.supervised").inner_text() == "督办"
        assert (
            "今日必须处置" in first.inner_text() and "超期 " in first.locator(".left").inner_text()
        )
        assert _counts(page) == {"all": 6, "mine": 3, "unassigned": 2}
        assert page.locator("#late-count").inner_text() == "超期 1"
        done = page.locator(f"li.task[data-id='{ids['done']}']")
        assert done.locator("button").count() == 0 and "待核查" in done.inner_text()
        working = page.locator(f"li.task[data-id='{ids['working']}']")
        assert working.locator("details.resolve").count() == 1
        assert working.locator("button.take").count() == 0
        detail = working.locator("a.detail").get_attribute("href")
        assert detail == f"/console/reports/{ids['working']}"
        page.screenshot(path=str(ARTIFACTS / "inbox_all.png"))

        page.click(".tabs a[data-tab='mine']")
        page.wait_for_url("**/inbox?assigned=mine")
        assert set(_shown(page)) == {ids["mine"], ids["working"], ids["done"]}
        page.click(".tabs a[data-tab='unassigned']")
        page.wait_for_url("**/inbox?assigned=unassigned")
        assert set(_shown(page)) == {ids["free"], ids["late"]}
        assert (
            page.locator(".tabs a[aria-current='page']").get_attribute("data-tab") == "unassigned"
        )
        assert outside == [] and errors == []
    with offline_page(live, tokens["fire"], **OFFICE) as (page, _, errors):
        page.goto(f"{live}/inbox?lang=en")
        assert _shown(page) == [ids["fires"]]
        assert page.locator("button.take").inner_text() == "Take up"
        assert errors == []


def test_taking_a_task_up_makes_it_mine(live, world, app):
    ids, tokens = world["ids"], world["tokens"]
    with offline_page(live, tokens["sun"], **OFFICE) as (page, outside, errors):
        page.goto(f"{live}/inbox?assigned=unassigned")
        page.click(f"li.task[data-id='{ids['free']}'] button.take")
        page.wait_for_selector("#inbox-flash:not([hidden])")
        assert page.locator("#inbox-flash").inner_text() == f"已接收：{ids['free'][:8]}"
        assert ids["free"] not in _shown(page)  # no longer unassigned
        assert _counts(page) == {"all": 6, "mine": 2, "unassigned": 1}
        page.click(".tabs a[data-tab='mine']")
        page.wait_for_url("**/inbox?assigned=mine")
        task = page.locator(f"li.task[data-id='{ids['free']}']")
        assert "处置中" in task.inner_text() and "sun-rq" in task.inner_text()
        assert task.locator("details.resolve").count() == 1
        assert outside == [] and errors == []
    with _client(app, tokens["sun"]) as c:
        body = c.get(f"/api/v1/reports/{ids['free']}").json()
    assert (body["status"], body["handler"]) == ("in_progress", "sun-rq")


def test_returning_a_task_needs_a_reason_and_takes_it_off_the_list(live, world, app):
    ids, tokens = world["ids"], world["tokens"]
    with offline_page(live, tokens["qian"], **OFFICE) as (page, outside, errors):
        page.goto(f"{live}/inbox")
        task = page.locator(f"li.task[data-id='{ids['mine']}']")
        task.locator("details.return summary").click()
        # Whitespace passes the browser's `required`: the server's refusal is shown in the task.
        task.locator("textarea[name=reason]").fill("   ")
        task.locator(".return-form button").click()
        message = task.locator(".task-message")
        message.wait_for(state="visible")
        page.wait_for_function(
            "() => document.querySelector('.task-message:not([hidden])')"
            ".textContent.includes('needs reason')"
        )
        task.locator("textarea[name=reason]").fill("不属于燃气管网，应由物业处理")
        page.screenshot(path=str(ARTIFACTS / "inbox_return.png"))
        task.locator(".return-form button").click()
        page.wait_for_selector("#inbox-flash:not([hidden])")
        assert ids["mine"] not in _shown(page)
        assert _counts(page)["all"] == 5
        assert outside == [] and _only_refusals(errors, 422) == []
    with _client(app, tokens["dispatcher"]) as d:
        body = d.get(f"/api/v1/reports/{ids['mine']}").json()
    assert body["status"] == "returned" and body["return_count"] == 1
    assert body["history"][-1]["reason"] == "不属于燃气管网，应由物业处理"


def test_resolving_needs_an_after_photo_chosen_in_the_page(live, world, app, tmp_path):
    ids, tokens = world["ids"], world["tokens"]
    rid = ids["working"]
    with offline_page(live, tokens["qian"], **OFFICE) as (page, outside, errors):
        page.goto(f"{live}/inbox")
        task = page.locator(f"li.task[data-id='{rid}']")
        task.locator("details.resolve summary").click()
        task.locator("select[name=level]").select_option("street")
        task.locator("textarea[name=note]").fill("已更换阀门")
        # No photo: the server refuses the resolve, and its words are shown.
        task.locator(".resolve-form button").click()
        page.wait_for_function(
            "() => document.querySelector('.task-message:not([hidden])')"
            ".textContent.includes('after')"
        )
        assert "处置后" in task.locator(".task-message").inner_text()
        task.locator("input[name=photo]").set_input_files(str(_jpeg(tmp_path / "after.jpg")))
        page.screenshot(path=str(ARTIFACTS / "inbox_resolve.png"))
        task.locator(".resolve-form button").click()
        page.wait_for_selector("#inbox-flash:not([hidden])")
        assert page.locator("#inbox-flash").inner_text() == f"已办结：{rid[:8]}"
        done = page.locator(f"li.task[data-id='{rid}']")
        assert "待核查" in done.inner_text() and done.locator("button").count() == 0
        assert set(_shown(page)[-2:]) == {rid, ids["done"]}  # waiting for 核查: last
        assert outside == [] and _only_refusals(errors, 409) == []
    with _client(app, tokens["qian"]) as c:
        body = c.get(f"/api/v1/reports/{rid}").json()
    assert (body["status"], body["resolution_level"]) == ("resolved", "street")
    assert [p["kind"] for p in body["photos"]] == ["after"]
    assert body["history"][-1]["note"] == "已更换阀门"


def test_the_inbox_is_for_departments_and_admins(app, db, world):
    tokens = world["tokens"]
    with _client(app, tokens["worker"]) as w:
        r = w.get("/inbox")
    assert r.status_code == 403 and "部门待办仅对职能部门用户和管理员开放" in r.text
    assert 'href="/inbox"' not in r.text  # no link to a page that answers 403
    admin = login_as(db, "admin", "inbox-admin")
    with _client(app, admin) as a:
        every = a.get("/inbox")
        fire = a.get("/inbox", params={"department": FIRE, "lang": "en"})
    assert every.status_code == 200 and every.text.count('class="task ') == 7
    assert 'href="/inbox"' in every.text
    assert fire.text.count('class="task ') == 1 and world["ids"]["fires"] in fire.text
    assert "Department inbox" in fire.text
