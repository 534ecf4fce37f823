"""The grid worker's phone pages in Chromium (a 390×800 phone): a photo taken offline waits in
IndexedDB with its report, survives a reload with no network (the service worker's copy), and
goes out after its report; 我的上报 lists the worker's reports with their statuses; 核查任务
verifies one report and sends another back as rework with a `check` photo, offline first."""

from __future__ import annotations

import pytest

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_case_handling import move, ok, send
from tests.api.test_photos import photo
from tests.api.test_reports import WEST, grids, point_m  # noqa: F401 - the grids fixture
from tests.factories import after_photo, clients_for, login_as
from tests.web.conftest import ARTIFACTS, phone_context, serving

X, Y = 250.0, 50.0  # inside WEST (tests.api.test_reports' layout)


@pytest.fixture
def app(grids, settings, tmp_path):  # noqa: F811 - the fixture imported above
    rules = PhotoSettings(folder=tmp_path / "photos")
    return create_app(settings.model_copy(update={"photos": rules}), engine=grids)


@pytest.fixture
def live(app):
    with serving(app) as base:
        yield base


@pytest.fixture
def people(app, grids):  # noqa: F811
    """Tokens and API clients of the worker of WEST, a dispatcher and the gas company."""
    tokens = {
        "worker": login_as(grids, "worker", "wang-wgy", grids=(WEST,)),
        "dispatcher": login_as(grids, "dispatcher", "zhao-zz"),
        "gas": login_as(grids, "department", "qian-rq", department="燃气公司"),
    }
    with clients_for(app, tokens) as clients:
        yield tokens, clients


def phone(base: str, token: str):
    """Return (context, page, errors) of a phone logged in as `token`, located in WEST."""
    lon, lat = point_m(X, Y)
    context, page = phone_context(base, token, lon, lat)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


def kept_offline(page, url: str) -> None:
    """Open `url` and wait until the service worker controls it and has kept the tabs."""
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.offlineReady === '1'")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")


def resolved(clients, grids, **kw) -> str:  # noqa: F811
    """Return a report of the worker's, taken through the loop to `resolved`."""
    d, gas = clients["dispatcher"], clients["gas"]
    rid = send(clients["worker"], **kw)
    ok(move(d, rid, "accepted"))
    ok(move(d, rid, "dispatched"))
    ok(move(gas, rid, "in_progress"))
    after_photo(grids, rid)
    ok(move(gas, rid, "resolved", level="community"))
    return rid


def test_a_photo_taken_offline_survives_a_reload_and_follows_its_report(live, people, tmp_path):
    tokens, clients = people
    lon, lat = point_m(X, Y)
    jpeg = tmp_path / "site.jpg"
    jpeg.write_bytes(photo(seed=3, at=(lon, lat)))
    context, page, errors = phone(live, tokens["worker"])
    kept_offline(page, f"{live}/report")
    page.wait_for_selector("body[data-ready='1']")
    context.set_offline(True)
    page.select_option("#theme", "gas")
    page.select_option("#category", "gas_leak")
    page.click("#gps")
    page.wait_for_function("() => document.getElementById('lon').value !== ''")
    page.set_input_files("#photo", str(jpeg))
    previews = page.locator("#previews img").count()
    page.click("#send")
    page.wait_for_function("() => document.getElementById('photo-outbox').dataset.count === '1'")
    # Reloaded with no network: the page is the service worker's copy, the queue still there.
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => document.getElementById('photo-outbox').dataset.count === '1'")
    after_reload = page.evaluate("document.getElementById('outbox').dataset.count")
    stored = page.evaluate(
        "() => riskgridPhotos.list(document.getElementById('report-page').dataset.username)"
        ".then((l) => l.map((r) => [r.kind, r.blob.size, r.report_id]))"
    )
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("() => document.getElementById('photo-outbox').dataset.count === '0'")
    sent = page.evaluate("document.getElementById('outbox').dataset.count")
    said = page.inner_text("#result")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone_photo_sent.png"))
    context.close()
    assert errors == [] and previews == 1
    assert after_reload == "1" and sent == "0" and "已发送照片 1 张" in said
    [(kind, size, rid)] = stored
    assert kind == "site" and size == jpeg.stat().st_size
    answer = ok(clients["worker"].get(f"/api/v1/reports/{rid}"))
    assert answer["reporter"] == "wang-wgy"
    [shown] = answer["photos"]
    assert shown["kind"] == "site" and shown["exif_distance_m"] < 1.0


def test_a_fix_on_the_spot_is_sent_resolved_with_its_after_photo(live, people, tmp_path):
    tokens, clients = people
    jpeg = tmp_path / "fixed.jpg"
    jpeg.write_bytes(photo(seed=4, at=point_m(X, Y)))
    context, page, errors = phone(live, tokens["worker"])
    page.goto(f"{live}/report")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#theme", "fire")
    page.select_option("#category", "blocked_exit")
    page.click("#gps")
    page.wait_for_function("() => document.getElementById('lon').value !== ''")
    page.check("#on-site")
    hint_shown = page.is_visible("#on-site-hint")
    page.click("#send")  # no photo yet: refused on the phone
    refused = page.inner_text("#result")
    page.set_input_files("#photo", str(jpeg))
    page.click("#send")
    page.wait_for_selector("#result:has-text('已发送照片 1 张')")
    unchecked = not page.is_checked("#on-site")
    context.close()
    assert errors == [] and hint_shown and "自行处置需附处置后照片" in refused and unchecked
    [mine] = ok(clients["worker"].get("/api/v1/reports", params={"theme": "fire"}))["features"]
    rid = mine["properties"]["id"]
    report = ok(clients["dispatcher"].get(f"/api/v1/reports/{rid}"))
    assert report["status"] == "resolved" and report["on_site"]
    assert report["resolution_level"] == "grid"
    assert [p["kind"] for p in report["photos"]] == ["after"]
    # The desk verifies it; the worker who fixed it may not.
    assert {m["to"] for m in report["moves"]} == {"verified", "in_progress"}
    assert ok(clients["worker"].get(f"/api/v1/reports/{rid}"))["moves"] == []
    assert ok(move(clients["dispatcher"], rid, "verified"))["status"] == "verified"


def test_my_reports_lists_the_workers_reports_with_their_statuses(live, people, grids):  # noqa: F811

    tokens, clients = people
    fresh = send(clients["worker"])
    done = resolved(clients, grids, x=300)
    other = send(clients["dispatcher"], x=320)  # in the worker's grid, not theirs
    context, page, errors = phone(live, tokens["worker"])
    page.goto(f"{live}/report/mine")
    rows = page.eval_on_selector_all(
        "#my-reports li",
        "els => els.map((e) => [e.dataset.id, e.querySelector('.status').textContent])",
    )
    page.screenshot(path=str(ARTIFACTS / "phone_my_reports.png"))
    page.goto(f"{live}/report/mine?lang=en")
    english = page.inner_text("#my-reports")
    context.close()
    assert errors == []
    assert dict(rows) == {fresh: "已上报", done: "处置完成"} and other not in dict(rows)
    assert "Resolved" in english and "Reported" in english
    # The pages are a worker's: a dispatcher is told so.
    r = clients["dispatcher"].get("/report/mine")
    assert r.status_code == 403 and "网格员" in r.text


def test_checks_verify_one_and_send_one_back_offline_with_a_check_photo(
    live,
    people,
    grids,  # noqa: F811
    tmp_path,
):
    tokens, clients = people
    good, bad = resolved(clients, grids, x=200), resolved(clients, grids, x=300)
    elsewhere = send(clients["dispatcher"], x=1100)  # the east grid: not the worker's to check
    jpeg = tmp_path / "check.jpg"
    jpeg.write_bytes(photo(seed=5, at=point_m(300, 50)))
    context, page, errors = phone(live, tokens["worker"])
    kept_offline(page, f"{live}/report/checks")
    listed = page.eval_on_selector_all("#checks li", "els => els.map((e) => e.dataset.id)")
    context.set_offline(True)
    page.reload()  # the copy the service worker kept
    page.wait_for_selector("body[data-ready='1']")
    offline_note = page.locator("#offline-copy").is_visible()
    card = page.locator(f"li.check[data-id='{bad}']")
    card.locator(".rework").click()
    refused_without_reason = card.locator(".check-result").inner_text()
    card.locator(".check-reason").fill("阀门仍漏气")
    card.locator(".check-photo").set_input_files(str(jpeg))
    card.locator(".rework").click()
    page.locator(f"li.check[data-id='{good}'] .verify").click()
    page.wait_for_function("() => document.getElementById('check-outbox').dataset.count === '2'")
    page.reload()
    page.wait_for_function("() => document.getElementById('check-outbox').dataset.count === '2'")
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("() => document.getElementById('check-outbox').dataset.count === '0'")
    said = {rid: page.inner_text(f"li.check[data-id='{rid}'] .check-result") for rid in (good, bad)}
    page.screenshot(path=str(ARTIFACTS / "phone_checks.png"))
    context.close()
    assert errors == [] and offline_note
    assert sorted(listed) == sorted([good, bad]) and elsewhere not in listed
    assert refused_without_reason == "请填写返工原因"
    assert said == {good: "已核查通过", bad: "已退回返工"}
    w = clients["worker"]
    assert ok(w.get(f"/api/v1/reports/{good}"))["status"] == "verified"
    back = ok(w.get(f"/api/v1/reports/{bad}"))
    assert back["status"] == "in_progress" and back["rework_count"] == 1
    assert back["history"][-1]["reason"] == "阀门仍漏气"
    assert [ph["kind"] for ph in back["photos"]].count("check") == 1
