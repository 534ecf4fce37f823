"""The whole loop in Chromium with three people logged in at once (issue 14, item 8): a grid
worker on a phone, a dispatcher at the console and a gas company user at the inbox.

1. The worker reports a gas leak with a photo; the dispatcher accepts it and dispatches it to
   the gas company's qian-rq; qian-rq takes it up and resolves it with an `after` photo; the
   worker verifies it on site (核查).
2. A report dispatched to the wrong department is returned (回退) with a reason from that
   department's inbox, dispatched again from the console's 回退 queue, resolved, sent back by the
   worker as rework (返工) with a reason and a `check` photo, resolved again and verified.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_case_handling import move, ok, send
from tests.api.test_photos import photo
from tests.api.test_reports import WEST, grids, point_m  # noqa: F401 - the grids fixture
from tests.factories import login_as
from tests.web.conftest import ARTIFACTS, PHONE, chromium, serving, session_cookie

GAS, FIRE = "燃气公司", "消防救援支队"
OFFICE = {"width": 1366, "height": 768}
X, Y = 250.0, 50.0  # inside WEST


@pytest.fixture
def world(grids, settings, tmp_path):  # noqa: F811 - the fixture imported above
    """A live server, the three people's tokens and API clients, and two photo files."""
    rules = PhotoSettings(folder=tmp_path / "photos")
    app = create_app(settings.model_copy(update={"photos": rules}), engine=grids)
    tokens = {
        "worker": login_as(grids, "worker", "wang-wgy", grids=(WEST,)),
        "dispatcher": login_as(grids, "dispatcher", "zhao-zz"),
        "gas": login_as(grids, "department", "qian-rq", department=GAS),
        "fire": login_as(grids, "department", "li-xf", department=FIRE),
    }
    files = {}
    for i, name in enumerate(("site", "after", "check", "again")):
        files[name] = tmp_path / f"{name}.jpg"
        files[name].write_bytes(photo(seed=20 + i, at=point_m(X, Y)))
    with serving(app) as base:
        clients = {
            k: TestClient(app, headers={"Authorization": f"Bearer {t}"}) for k, t in tokens.items()
        }
        yield base, tokens, clients, files


class People:
    """One browser, a context (and page) per person, each logged in with their cookie."""

    def __init__(self, base: str, tokens: dict) -> None:
        self.contexts = []
        self.errors: list[str] = []
        self.pages = {}
        lon, lat = point_m(X, Y)
        for who, viewport in (("worker", PHONE), ("dispatcher", OFFICE), ("gas", OFFICE),
                              ("fire", OFFICE)):  # fmt: skip
            extra = (
                {"geolocation": {"longitude": lon, "latitude": lat, "accuracy": 8},
                 "permissions": ["geolocation"]}
                if who == "worker" else {}
            )  # fmt: skip
            ctx = chromium().new_context(viewport=viewport, **extra)
            self.contexts.append(ctx)
            ctx.add_cookies([session_cookie(base, tokens[who])])
            page = ctx.new_page()
            page.on("pageerror", lambda e, who=who: self.errors.append(f"{who}: {e}"))
            self.pages[who] = page

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


def _report_on_the_phone(page, base: str, jpeg) -> None:
    page.goto(f"{base}/report")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#theme", "gas")
    page.select_option("#category", "gas_leak")
    page.click("#gps")
    page.wait_for_function("() => document.getElementById('lon').value !== ''")
    page.set_input_files("#photo", str(jpeg))
    page.click("#send")
    page.wait_for_selector("#result:has-text('已发送照片 1 张')")


def _dispatch_at_the_console(page, base: str, rid: str, queue: str, dept: str, handler=None):
    page.goto(f"{base}/console?queue={queue}")
    page.check(f'input.pick[value="{rid}"]')
    page.select_option("#bulk-department", dept)
    if handler:
        page.wait_for_selector(f'#bulk-handler option[value="{handler}"]', state="attached")
        page.select_option("#bulk-handler", handler)
    page.click("#bulk-dispatch")
    page.wait_for_selector(f'tr[data-id="{rid}"][data-status="dispatched"]')


def _resolve_in_the_inbox(page, base: str, rid: str, jpeg, take: bool) -> None:
    page.goto(f"{base}/inbox")
    task = page.locator(f"li.task[data-id='{rid}']")
    if take:
        task.locator("button.take").click()
        page.wait_for_selector("#inbox-flash:not([hidden])")
        task = page.locator(f"li.task[data-id='{rid}']")
    task.locator("details.resolve summary").click()
    task.locator("select[name=level]").select_option("community")
    task.locator("input[name=photo]").set_input_files(str(jpeg))
    task.locator(".resolve-form button").click()
    page.wait_for_selector(f"#inbox-flash:has-text('已办结：{rid[:8]}')")


def _check_on_the_phone(page, base: str, rid: str, rework: tuple[str, object] | None = None):
    page.goto(f"{base}/report/checks")
    page.wait_for_selector("body[data-ready='1']")
    card = page.locator(f"li.check[data-id='{rid}']")
    if rework is None:
        card.locator(".verify").click()
        said = "已核查通过"
    else:
        card.locator(".check-reason").fill(rework[0])
        card.locator(".check-photo").set_input_files(str(rework[1]))
        card.locator(".rework").click()
        said = "已退回返工"
    page.wait_for_selector(f"li.check[data-id='{rid}'] .check-result:has-text('{said}')")


def test_report_accept_dispatch_resolve_verify_by_three_people(world):
    base, tokens, clients, files = world
    people = People(base, tokens)
    try:
        w, d, gas = (people.pages[k] for k in ("worker", "dispatcher", "gas"))
        _report_on_the_phone(w, base, files["site"])
        [feature] = ok(clients["worker"].get("/api/v1/reports"))["features"]
        rid = feature["id"]
        d.goto(f"{base}/console")
        d.check(f'input.pick[value="{rid}"]')
        d.click("#bulk-accept")
        d.wait_for_selector(f'tr[data-id="{rid}"][data-status="accepted"]')
        _dispatch_at_the_console(d, base, rid, "accepted", GAS, "qian-rq")
        _resolve_in_the_inbox(gas, base, rid, files["after"], take=True)
        _check_on_the_phone(w, base, rid)
        ARTIFACTS.mkdir(exist_ok=True)
        w.screenshot(path=str(ARTIFACTS / "loop_verified_phone.png"))
    finally:
        people.close()
    assert people.errors == []
    done = ok(clients["dispatcher"].get(f"/api/v1/reports/{rid}"))
    assert (done["status"], done["handler"], done["resolution_level"]) == (
        "verified",
        "qian-rq",
        "community",
    )
    steps = [(h["to_status"], h["actor"]) for h in done["history"][1:]]
    assert steps == [
        ("accepted", "zhao-zz"),
        ("dispatched", "zhao-zz"),
        ("in_progress", "qian-rq"),
        ("resolved", "qian-rq"),
        ("verified", "wang-wgy"),
    ]
    assert sorted(ph["kind"] for ph in done["photos"]) == ["after", "site"]


def test_a_return_and_a_rework_through_the_screens(world):
    base, tokens, clients, files = world
    d_api = clients["dispatcher"]
    rid = send(clients["worker"], x=X, y=Y)
    ok(move(d_api, rid, "accepted"))
    people = People(base, tokens)
    try:
        w, d, gas, fire = (people.pages[k] for k in ("worker", "dispatcher", "gas", "fire"))
        _dispatch_at_the_console(d, base, rid, "accepted", FIRE)
        fire.goto(f"{base}/inbox")
        task = fire.locator(f"li.task[data-id='{rid}']")
        task.locator("details.return summary").click()
        task.locator("textarea[name=reason]").fill("燃气泄漏不属于消防职责")
        task.locator(".return-form button").click()
        fire.wait_for_selector("#inbox-flash:not([hidden])")
        _dispatch_at_the_console(d, base, rid, "returned", GAS, "qian-rq")
        _resolve_in_the_inbox(gas, base, rid, files["after"], take=True)
        _check_on_the_phone(w, base, rid, rework=("阀门仍有气味", files["check"]))
        _resolve_in_the_inbox(gas, base, rid, files["again"], take=False)
        _check_on_the_phone(w, base, rid)
    finally:
        people.close()
    assert people.errors == []
    done = ok(d_api.get(f"/api/v1/reports/{rid}"))
    assert done["status"] == "verified"
    assert (done["return_count"], done["rework_count"]) == (1, 1)
    moves = [(h["from_status"], h["to_status"], h["reason"]) for h in done["history"][1:]]
    assert moves == [
        ("reported", "accepted", None),
        ("accepted", "dispatched", None),
        ("dispatched", "returned", "燃气泄漏不属于消防职责"),
        ("returned", "dispatched", None),
        ("dispatched", "in_progress", None),
        ("in_progress", "resolved", None),
        ("resolved", "in_progress", "阀门仍有气味"),
        ("in_progress", "resolved", None),
        ("resolved", "verified", None),
    ]
    assert sorted(ph["kind"] for ph in done["photos"]) == ["after", "after", "check"]
