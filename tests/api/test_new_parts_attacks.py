"""What landed with 走访 on the phone, the letters' notifications, report_loops and the query time
bounds, tried as a hostile user would: markup in campaign names and checklist labels on the
visit page, a worker reaching another district's campaign, a visit replayed with someone else's
token, letter notifications read, marked or followed by another department, the overdue sweep
with nobody to tell, every move the loop offers driven through the API and report_loops held to
a recomputation from report_events, and the query times of every route that takes them. The
phone's own storage (outbox, service worker copies) is tried in Chromium in
tests/web/test_visit_page_attacks.py."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.letters import notices
from geo.reports import bulk
from geo.settings import LetterSettings, PhotoSettings, Settings
from tests.factories import truncate
from tests.geo.campaigns.place import (
    A1,
    A2,
    B1,
    C1,
    D_A,
    D_C,
    PER_TEST,
    as_,
    at,
    campaign_body,
    prepared,
)
from tests.geo.db.test_report_loops import COLUMNS, expected

WATER, GAS = "水务局", "燃气公司"
EVIL = "</script><!--<script>alert(1)</script><img src=x onerror=alert(2)>"
TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
RUNNING = {"starts_on": str(TODAY - timedelta(days=1)), "ends_on": str(TODAY + timedelta(days=30))}
HOUSEHOLDS = {"register": "households", "filter": {"living_alone_over": 60}}
EMPTIED = (*PER_TEST, "letter_attachments", "letters", "letter_numbers", "webhook_deliveries")


@pytest.fixture(scope="module")
def place(test_database: tuple[Settings, Engine], tmp_path_factory) -> Engine:
    return prepared(test_database[1], tmp_path_factory.mktemp("new-parts-attacks"))


@pytest.fixture(scope="module")
def api(place: Engine, test_database: tuple[Settings, Engine], tmp_path_factory) -> Iterator:
    letters = LetterSettings(folder=tmp_path_factory.mktemp("letters"))
    # Flood reports resolve without an `after` photo here: the loop test moves many of them.
    photos = PhotoSettings(folder=tmp_path_factory.mktemp("photos"), after_not_required=("flood",))
    settings = test_database[0].model_copy(update={"letters": letters, "photos": photos})
    # A 500 is an answer to assert on, not an exception in the test.
    with TestClient(create_app(settings, engine=place), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(place: Engine) -> Engine:
    with place.begin() as conn:
        truncate(conn, EMPTIED)
    return place


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608 - the tests' own table names


def launched(api: TestClient, boss: dict, code: str = "CA11", **over) -> None:
    body = campaign_body(code=code, **{**RUNNING, **over})
    r = api.post("/api/v1/campaigns", json=body, headers=boss)
    assert r.status_code == 201, r.text
    assert api.post(f"/api/v1/campaigns/{code}/launch", headers=boss).status_code == 200


def visit(grid: str = A1, **over) -> dict:
    lon, lat = at(grid)
    body = {"id": str(uuid.uuid4()), "campaign": "CA11", "lon": lon, "lat": lat}
    return {**body, "answers": {"low_lying": True}, **over}


def hazard(grid: str = A1, **over) -> dict:
    lon, lat = at(grid, dx=20)
    return {
        "id": str(uuid.uuid4()),
        "lon": lon,
        "lat": lat,
        "theme": "flood",
        "category": "waterlogging",
        **over,
    }


# --- 走访: the visit page and the visits it sends ------------------------------------------


def _data_block(page: str, block_id: str) -> str:
    """Return the text of the page's <script type="application/json" id=block_id> up to the
    first </script> the HTML parser would end it at."""
    start = page.index(f'<script type="application/json" id="{block_id}">')
    body = page[start:].split(">", 1)[1]
    return body.split("</script>", 1)[0]


def test_markup_in_campaign_names_and_checklist_labels_stays_text_on_the_visit_page(api, world):
    admin = as_(world, "admin")
    body = campaign_body(code="CA11", **RUNNING, name="创安" + EVIL)
    body["checklist"][0]["label"] = "低洼" + EVIL
    body["checklist"][3]["label"] = "说明<!--"
    assert api.post("/api/v1/campaigns", json=body, headers=admin).status_code == 201
    assert api.post("/api/v1/campaigns/CA11/launch", headers=admin).status_code == 200
    r = api.get("/report/visit", headers=as_(world, "worker", grids=(A1,)))
    page = r.text
    assert r.status_code == 200
    # Nothing written by the campaign's manager opens a tag, a comment or a script.
    assert "<script>alert" not in page and "<img src=x" not in page and "<!--" not in page
    assert page.count("</script>") == page.count("<script")
    # The page's data blocks end where the data ends, and hold the names as written.
    [campaign] = json.loads(_data_block(page, "visit-campaigns"))
    assert campaign["name"] == "创安" + EVIL
    labels = [item["label"] for item in campaign["checklist"]]
    assert labels[0] == "低洼" + EVIL and labels[3] == "说明<!--"
    assert html.escape("创安" + EVIL, quote=False) in page  # the option, as text
    assert f'data-label="{html.escape("低洼" + EVIL)}"' in page
    # Inline scripts run only with the response's nonce: the data blocks are not scripts.
    policy = r.headers["content-security-policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'nonce-" in script_src
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", page)
    assert inline and all('type="application/json"' in attrs for attrs in inline)


def test_a_worker_has_no_visit_and_no_household_of_another_districts_campaign(api, world):
    admin = as_(world, "admin")
    launched(api, admin, "CA11", targets=HOUSEHOLDS)  # districts A and B
    launched(api, admin, "CA12", name="让胡路排查", districts=[D_C], targets=HOUSEHOLDS)
    worker = as_(world, "worker", grids=(A1,))
    page = api.get("/report/visit", headers=worker).text
    assert re.findall(r'<option value="(CA\d+)">', page) == ["CA11"]
    assert "让胡路排查" not in page
    mine = api.get("/api/v1/campaigns/CA12/targets", params={"todo": "mine"}, headers=worker)
    listed = api.get("/api/v1/campaigns/CA12/targets", headers=worker)
    assert mine.json()["targets"] == [] and listed.json()["targets"] == []
    assert "住户9" not in listed.text and "HH009" not in listed.text  # C1's household
    # The API holds the page's rule: a worker visits for the campaigns of their districts.
    for body in (visit(C1, campaign="CA12"), visit(C1, campaign="CA12", target="HH009")):
        r = api.post("/api/v1/visits", json=body, headers=worker)
        assert r.status_code == 403, r.text
        assert "230604" in r.json()["detail"] and "HH009" not in r.text
    assert count(world, "visits") == 0
    # Their own district's campaign still takes their visit; an admin's, anywhere.
    assert api.post("/api/v1/visits", json=visit(A1), headers=worker).status_code == 201
    body = visit(C1, campaign="CA12")
    assert api.post("/api/v1/visits", json=body, headers=admin).status_code == 201


def test_a_visit_replayed_with_another_workers_token_is_refused_and_tells_nothing(api, world):
    launched(api, as_(world, "admin"), targets=HOUSEHOLDS)
    li = as_(world, "worker", username="li-wgy", grids=(A1,))
    wang = as_(world, "worker", username="wang-wgy", grids=(A1,))  # the same grid, one phone
    found = hazard(description="地下室入口低洼积水-李的记录")
    body = visit(target="HH000", leaflets=3, reports=[found])
    first = api.post("/api/v1/visits", json=body, headers=li)
    assert first.status_code == 201 and first.json()["target"]["ref"] == "HH000"
    again = api.post("/api/v1/visits", json=body, headers=wang)
    assert again.status_code == 409, again.text
    for secret in ("HH000", "李的记录", "li-wgy", A1):
        assert secret not in again.text
    # The hazard's report under its own id, and a new visit carrying it: refused alike.
    report = api.post("/api/v1/reports", json=found, headers=wang)
    assert report.status_code == 409 and "李的记录" not in report.text
    carried = api.post("/api/v1/visits", json={**body, "id": str(uuid.uuid4())}, headers=wang)
    assert carried.status_code == 409 and "李的记录" not in carried.text
    with world.connect() as conn:
        visits = conn.execute(text("SELECT visitor FROM visits")).scalars().all()
        reporters = conn.execute(text("SELECT reporter FROM reports")).scalars().all()
    assert visits == ["li-wgy"] and reporters == ["li-wgy"]
    # The owner's resend is still the stored visit.
    assert api.post("/api/v1/visits", json=body, headers=li).status_code == 200


# --- letters' notifications ------------------------------------------------------------------


def _issued_letter(api: TestClient, sender: dict, department: str = WATER, **texts) -> str:
    scope = {"department": department, "districts": [D_A]}
    d = api.post("/api/v1/letters", json=scope, headers=sender)
    assert d.status_code == 201, d.text
    url = d.json()["url"]
    if texts:
        assert api.patch(url, json=texts, headers=sender).status_code == 200
    assert api.post(f"{url}/issue", headers=sender).status_code == 200
    return url


def _mine(api: TestClient, who: dict) -> list[dict]:
    return api.get("/api/v1/notifications", headers=who).json()["notifications"]


def test_a_letters_notification_is_read_marked_and_followed_by_its_recipients_alone(api, world):
    sender = as_(world, "dispatcher", districts=(D_A,))
    water = as_(world, "department", department=WATER)
    gas = as_(world, "department", department=GAS)
    other_desk = as_(world, "dispatcher", districts=(D_C,))
    subject = "关于低洼小区积水的提示" + EVIL
    url = _issued_letter(api, sender, subject=subject, opening="开头-只在函内")
    [n] = _mine(api, water)
    assert n["kind"] == "letter_issued" and n["data"]["subject"] == subject
    link = f"/api/v1/letters/{n['letter_id']}?format=html"
    assert api.get(link, headers=water).status_code == 200
    for who in (gas, other_desk):
        assert _mine(api, who) == []
        page = api.get("/notifications", headers=who).text
        assert "关于低洼小区积水的提示" not in page and link not in page
        # Told the id, they still cannot open it: not found, as a letter that does not exist.
        for r in (api.get(link, headers=who), api.get(n["data"]["url"], headers=who)):
            assert r.status_code == 404 and "关于低洼" not in r.text
        marked = api.post("/api/v1/notifications/read", json={"ids": [n["id"]]}, headers=who)
        assert marked.json() == {"marked": 0, "unread": 0}
        assert (
            api.get("/api/v1/notifications", params={"before": n["id"] + 1}, headers=who).json()[
                "notifications"
            ]
            == []
        )
    assert _mine(api, water)[0]["read_at"] is None
    # The recipient's page shows the subject as text and links to the letter they may open.
    page = api.get("/notifications", headers=water).text
    assert f'href="{link}"' in page and "<script>alert" not in page
    assert html.escape("关于低洼小区积水的提示" + EVIL, quote=False) in page
    # The webhook's payloads carry no word the sender or the department wrote.
    assert api.post(f"{url}/acknowledge", headers=water).status_code == 200
    reply = {"text": "整改情况-只在函内 已疏通"}
    assert api.post(f"{url}/reply", data=reply, headers=water).status_code == 200
    assert api.post(f"{url}/close", headers=sender).status_code == 200
    with world.connect() as conn:
        payloads = conn.execute(text("SELECT kind, payload::text FROM outbox")).all()
    assert sorted(k for k, _ in payloads) == [
        "letter_acknowledged", "letter_closed", "letter_issued", "letter_replied",
    ]  # fmt: skip
    for _, payload in payloads:
        for words in ("关于低洼", "开头-只在函内", "整改情况", "alert"):
            assert words not in payload


def _overdue(engine: Engine, url: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE letters SET reply_due = now() - interval '1 hour' WHERE id = :id"),
            {"id": url.rsplit("/", 1)[1]},
        )


def _sweep(engine: Engine) -> dict:
    with engine.begin() as conn:
        return notices.sweep(conn)


def test_the_overdue_sweep_tells_once_with_nobody_in_the_department_or_a_disabled_sender(
    api, world
):
    sender = as_(world, "dispatcher", username="sender-gone", districts=(D_A,))
    water = as_(world, "department", username="water-1", department=WATER)
    to_nobody = _issued_letter(api, sender, department=GAS)  # the gas company has no user
    to_water = _issued_letter(api, sender)
    with world.begin() as conn:
        conn.execute(text("UPDATE users SET disabled_at = now() WHERE username = 'sender-gone'"))
    for url in (to_nobody, to_water):
        _overdue(world, url)
    assert _sweep(world) == {"letters_overdue": 2}
    assert _sweep(world) == {"letters_overdue": 0}  # told once, though nobody heard of one
    with world.connect() as conn:
        told = conn.execute(
            text(
                "SELECT n.letter_id::text, u.username FROM notifications n "
                "JOIN users u ON u.id = n.user_id WHERE n.kind = 'letter_overdue'"
            )
        ).all()
        events = conn.execute(
            text("SELECT payload->'letter'->>'id' FROM outbox WHERE kind = 'letter_overdue'")
        ).scalars()
        overdue_events = sorted(events)
    ids = {url.rsplit("/", 1)[1] for url in (to_nobody, to_water)}
    assert told == [(to_water.rsplit("/", 1)[1], "water-1")]
    assert overdue_events == sorted(ids)
    [n] = [x for x in _mine(api, water) if x["kind"] == "letter_overdue"]
    assert api.get(n["data"]["url"], headers=water).status_code == 200


# --- report_loops through every move the API offers ------------------------------------------


def _moves(api: TestClient, who: dict, ids: list[str], to: str, **more) -> dict:
    r = api.post("/api/v1/reports:transitions", json={"ids": ids, "to": to, **more}, headers=who)
    assert r.status_code == 200, r.text
    return r.json()


def _move(api: TestClient, who: dict, rid: str, to: str, **more) -> None:
    r = api.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **more}, headers=who)
    assert r.status_code == 200, (to, r.text)


def _imported(world: Engine, settings: Settings) -> list[str]:
    """Load three reports with whole histories as `riskgrid reports import` does."""
    base = datetime(2025, 7, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    h = timedelta(hours=1)
    rows = []
    for i, grid in enumerate((A1, A2, B1)):
        lon, lat = at(grid, dx=40)
        rows.append({
            "id": uuid.uuid4(), "lon": lon, "lat": lat, "theme": "flood",
            "category": "waterlogging", "reporter": "档案", "reported_at": base,
            "accepted_at": base + h, "dispatched_at": base + 2 * h,
            "returned_at": base + 3 * h if i == 0 else None,
            "redispatched_at": base + 4 * h if i == 0 else None,
            "return_reason": "非本单位" if i == 0 else None,
            "started_at": base + 5 * h, "resolved_at": base + 6 * h,
            "reworked_at": base + 7 * h if i < 2 else None,
            "reresolved_at": base + 8 * h if i < 2 else None,
            "rework_reason": "未处理干净" if i < 2 else None,
            "verified_at": base + 9 * h if i != 1 else None,
            "resolution_level": "community",
            "status": "resolved" if i == 1 else "verified",
        })  # fmt: skip
    with world.begin() as conn:
        result = bulk.load(conn, pd.DataFrame(rows), settings.reports)
    assert result.inserted == 3
    return [str(r["id"]) for r in rows]


def _transitions(engine: Engine) -> dict[uuid.UUID, list[dict]]:
    by_report: dict[uuid.UUID, list[dict]] = defaultdict(list)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT report_id, from_status, to_status, at, level, actor_id FROM report_events "
                "WHERE kind = 'transition'"
            )
        )
        for r in rows:
            by_report[r.report_id].append(
                {
                    "from": r.from_status,
                    "to": r.to_status,
                    "at": r.at,
                    "level": r.level,
                    "actor_id": r.actor_id,
                }
            )
    return by_report


def _loops(engine: Engine) -> dict[uuid.UUID, dict]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT report_id, {', '.join(COLUMNS)} FROM report_loops"))  # noqa: S608
        return {r.report_id: {c: getattr(r, c) for c in COLUMNS} for r in rows}


def test_report_loops_equal_the_transitions_after_every_move_the_api_offers(api, world):
    settings = api.app.state.settings
    desk = as_(world, "dispatcher")
    admin = as_(world, "admin")
    wa = as_(world, "worker", grids=(A1, A2))
    wb = as_(world, "worker", grids=(B1,))
    water1 = as_(world, "department", username="water-1", department=WATER)
    water2 = as_(world, "department", username="water-2", department=WATER)
    # Reported: a batch from the phone, single posts, fixes on the spot, a visit's hazards.
    batch = [hazard(A1 if i % 2 else A2, description=f"积水{i}") for i in range(14)]
    sent = api.post("/api/v1/reports:batch", json={"reports": batch}, headers=wa).json()
    assert sent["created"] == 14
    r = [b["id"] for b in batch]
    for _ in range(3):
        body = hazard(B1)
        assert api.post("/api/v1/reports", json=body, headers=wb).status_code == 201
        r.append(body["id"])  # r[14..16]
    on_site = [hazard(A1, on_site=True) for _ in range(2)]
    for body in on_site:
        assert api.post("/api/v1/reports", json=body, headers=wa).status_code == 201
    launched(api, admin)
    found = [hazard(A1), hazard(A1)]
    v = api.post("/api/v1/visits", json=visit(reports=found), headers=wa)
    assert v.status_code == 201, v.text
    imported = _imported(world, settings)

    # 立案 in bulk (a repeated id once, an unknown one refused), 不予立案, duplicates in bulk.
    accepted = [*r[:12], r[14], r[15], found[0]["id"]]
    out = _moves(api, desk, [*accepted, r[0], str(uuid.uuid4())], "accepted")
    assert (out["moved"], out["failed"]) == (15, 1)
    _move(api, desk, r[12], "rejected", reason="不属实")
    out = _moves(api, desk, [r[13], r[16], found[1]["id"]], "duplicate", duplicate_of=r[0])
    assert out["moved"] == 3
    # 派遣 in bulk, one with its handler; 回退 twice and re-dispatched; taken up; resolved.
    out = _moves(api, desk, [*r[:12], r[14]], "dispatched", department=WATER)
    assert out["moved"] == 13
    _move(api, desk, r[15], "dispatched", department=WATER, handler="water-2")
    assert _moves(api, water1, r[1:3], "returned", reason="非本单位")["moved"] == 2
    _move(api, desk, r[1], "dispatched", department=WATER)
    _move(api, water2, r[1], "returned", reason="仍非本单位")
    _move(api, admin, r[1], "dispatched", department=WATER)
    taken = [r[0], r[1], *r[3:12], r[14], r[15]]
    assert _moves(api, water1, taken, "in_progress")["moved"] == len(taken)
    _moves(api, water1, [r[0], *r[3:8]], "resolved", level="community")
    _moves(api, water2, [r[8], r[9], r[14], r[15]], "resolved", level="district")
    # 核查: passed by the grid's worker or the desk, 返工 and resolved again, twice for one.
    for rid in (r[0], r[3]):
        _move(api, wa, rid, "verified")
    _move(api, wb, r[14], "verified")
    _moves(api, desk, [r[4], r[5], r[8]], "in_progress", reason="未处理干净")
    _move(api, wa, r[9], "in_progress", reason="仍有积水")
    _moves(api, water2, [r[4], r[5], r[8], r[9]], "resolved", level="grid")
    _move(api, desk, r[4], "verified")
    _move(api, wa, r[5], "in_progress", reason="第二次返工")
    _move(api, water1, r[5], "resolved", level="street")
    _moves(api, desk, [r[5], r[8], r[15]], "verified")
    # Fixes on the spot: one passed by the desk, one sent back to the department and fixed.
    _move(api, desk, on_site[0]["id"], "verified")
    _move(api, desk, on_site[1]["id"], "in_progress", reason="未修好")
    _move(api, water1, on_site[1]["id"], "resolved", level="community")
    _move(api, admin, on_site[1]["id"], "verified")
    # An imported history taken on by hand: the imported resolved one checked, then again.
    _move(api, desk, imported[1], "in_progress", reason="档案复查")
    _move(api, water1, imported[1], "resolved", level="grid")
    _move(api, wa, imported[1], "verified")
    # 督办 set and lifted, reassignments by hand: history that is not a transition.
    rid = r[6]
    put = api.put(f"/api/v1/reports/{rid}/supervision", json={"note": "督办"}, headers=desk)
    assert put.status_code == 200
    assert api.delete(f"/api/v1/reports/{rid}/supervision", headers=desk).status_code == 200
    for grid in (A2, B1):
        patched = api.patch(f"/api/v1/reports/{r[7]}", json={"grid": grid}, headers=desk)
        assert patched.status_code == 200
    # Refused moves write nothing.
    wrong = api.post(f"/api/v1/reports/{r[0]}/transitions", json={"to": "resolved"}, headers=wa)
    assert wrong.status_code in (403, 409)

    transitions, loops = _transitions(world), _loops(world)
    assert set(loops) == set(transitions)
    assert len(loops) == count(world, "reports") == 24  # every report moved at least once
    for report_id, events in transitions.items():
        assert loops[report_id] == expected(events), report_id
    rows = list(loops.values())
    by_id = {str(k): row for k, row in loops.items()}
    assert (by_id[r[1]]["returns"], by_id[imported[0]]["returns"]) == (2, 1)
    assert by_id[r[5]]["checks"] == 3  # 返工 by the desk, 返工 by the worker, verified
    assert by_id[imported[1]]["checks"] == 3  # its imported 返工, then checked twice by hand
    assert any(row["low"] is False for row in rows) and any(row["low"] for row in rows)
    assert all(any(row[c] is not None for row in rows) for c in COLUMNS)


# --- query times: 2000-2100, on every route that takes them ----------------------------------


def _time_routes(api: TestClient) -> list[tuple[str, tuple[str, ...]]]:
    """The GET routes whose query takes since or until (from the API's own document)."""
    found = []
    for path, operations in api.app.openapi()["paths"].items():
        op = operations.get("get")
        names = {p["name"] for p in (op or {}).get("parameters", []) if p["in"] == "query"}
        if names & {"since", "until"}:
            found.append(
                (path.replace("{name}", "flood"), tuple(sorted(names & {"since", "until"})))
            )
    return found


def test_every_route_with_since_or_until_holds_the_same_bounds_and_takes_local_times(api, world):
    worker = as_(world, "worker", grids=(A1,))
    assert api.post("/api/v1/reports", json=hazard(A1), headers=worker).status_code == 201
    admin = as_(world, "admin")
    routes = _time_routes(api)
    paths = {p for p, _ in routes}
    assert {"/api/v1/reports", "/api/v1/risk/grids", "/api/v1/audit", "/maps/flood"} <= paths
    assert len(routes) >= 13
    # The first and last moments of the years 2000-2100 on the office's clock are legitimate
    # bounds, as are their UTC forms; past them nothing is kept, and no UTC overflow answers.
    legit = [
        ("2000-01-01T00:00:00+08:00", "2000-03-01T00:00:00+08:00"),
        ("2000-01-01T00:00:00Z", "2000-02-01T00:00:00-12:00"),
        ("2100-11-01T00:00:00+08:00", "2101-01-01T00:00:00+08:00"),
        ("2100-11-01T00:00:00Z", "2100-12-31T23:59:59-12:00"),
    ]
    hostile = [
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"since": "1999-12-31T23:59:59+08:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-12:00"}, "until"),
        ({"until": "2101-01-01T00:00:01+08:00"}, "until"),
    ]
    refused, answered = [], []
    for path, names in routes:
        for since, until in legit:
            asked = {k: v for k, v in (("since", since), ("until", until)) if k in names}
            r = api.get(path, params=asked, headers=admin)
            if r.status_code != 200:
                refused.append((path, asked, r.status_code, r.text[:200]))
        for params, name in hostile:
            if name not in names:
                continue
            r = api.get(path, params=params, headers=admin)
            words = f"{name} must lie between 2000-01-01 and 2100-12-31"
            if r.status_code != 422 or words not in r.json()["detail"]:
                answered.append((path, params, r.status_code, r.text[:200]))
    assert refused == []
    assert answered == []
