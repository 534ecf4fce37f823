"""风险提示函 over HTTP, on the hotspot block with a hand-made scenario: the draft's figures
against counts of the raw rows, its hot spots, trend, open reports and map; the PDF's text;
the loop with its refused moves and rights; attachments; overdue replies and 按期回复率."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import text

from api.app import create_app
from geo.letters.mapdata import WIDTH
from geo.reports.deadlines import calendar
from geo.settings import LetterSettings, WorkTimeSettings
from tests.factories import BLOCK_SIZE, block_code, login_as, put_points

HOUSING = "住房和城乡建设局"
GAS = "燃气公司"
CLUSTER = [(i, j) for i in (1, 2, 3) for j in (1, 2, 3)]
FAR = [(8, 0), (0, 8), (9, 9), (6, 2), (2, 7), (8, 5)]
OLD_REPORTED = datetime(2024, 3, 4, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Daqing


def _centre(i: int, j: int) -> tuple[float, float]:
    return ((i + 0.5) * BLOCK_SIZE, (j + 0.5) * BLOCK_SIZE)


def _set(db, sql: str, n: int, **params) -> None:
    """Update `n` of the housing reports still `reported` (in id order) with `sql`'s SET."""
    with db.begin() as conn:
        conn.execute(
            text(
                f"UPDATE reports SET {sql} WHERE id IN (SELECT id FROM reports WHERE status = "  # noqa: S608 - the tests' own SET clauses
                "'reported' AND department = :d AND reported_at > now() - interval '60 days' "
                "ORDER BY id LIMIT :n)"
            ),
            {"d": HOUSING, "n": n, **params},
        )


@pytest.fixture
def town(block) -> object:
    """The block with a hot cluster of gas reports for housing (8 in each of 3 × 3 grids), six
    scattered housing reports, 20 fire reports (another department's) in one corner grid, and
    one housing report open since March 2024; statuses set by hand."""
    put_points(block, [_centre(*c) for c in CLUSTER for _ in range(8)], "gas", "unsafe_appliance")
    put_points(block, [_centre(*c) for c in FAR], "flood", "dilapidated_housing")
    put_points(block, [_centre(7, 7)] * 20, "fire", "electrical")
    put_points(block, [_centre(5, 5)], "gas", "illegal_cylinder", reported_at=OLD_REPORTED)
    with block.begin() as conn:
        # The block lies in 萨尔图区 (its file names no district).
        conn.execute(text("UPDATE grids SET district_code = '230602'"))
        conn.execute(text("UPDATE reports SET district_code = '230602'"))
        # Reported over the last four weeks; every open stage due in ten days for a start.
        conn.execute(
            text(
                "UPDATE reports SET reported_at = now() - (abs(hashtext(id::text)) % 28) "
                "* interval '1 day' - interval '1 hour', due_at = now() + interval '10 days' "
                "WHERE reported_at > '2025-01-01'"
            )
        )
        conn.execute(
            text(
                "UPDATE reports SET status = 'dispatched', due_at = now() - interval '3 days' "
                "WHERE reported_at = :t"
            ),
            {"t": OLD_REPORTED},
        )
    _set(block, "status = 'verified', due_at = NULL, resolution_level = 'grid'", 10)
    _set(block, "status = 'resolved', resolution_level = 'street', return_count = 1", 5)
    _set(block, "status = 'rejected', due_at = NULL", 4)
    _set(block, "status = 'dispatched', due_at = now() - interval '2 days', rework_count = 1", 6)
    _set(block, "status = 'in_progress'", 7)
    return block


@pytest.fixture
def app_settings(settings, tmp_path):
    return settings.model_copy(
        update={"letters": LetterSettings(folder=tmp_path / "letters", max_attachment_bytes=50_000)}
    )


@pytest.fixture
def api(town, app_settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings, engine=town)) as c:
        yield c


def _as(db, role: str, name: str, **scope) -> dict:
    return {"Authorization": f"Bearer {login_as(db, role, username=name, **scope)}"}


def _expected(db, since: datetime) -> dict:
    """The figures from the raw rows: housing's reports since `since`, by status."""
    with db.connect() as conn:
        rows = dict(
            conn.execute(
                text(
                    "SELECT status, count(*) FROM reports WHERE department = :d "
                    "AND reported_at >= :since GROUP BY 1"
                ),
                {"d": HOUSING, "since": since},
            ).all()
        )
    received = sum(rows.values())
    accepted = received - rows.get("reported", 0) - rows.get("rejected", 0)
    return {
        "received": received,
        "accepted": accepted,
        "closed": rows.get("verified", 0),
        "resolved": rows.get("verified", 0) + rows.get("resolved", 0),
        "open": received - rows.get("verified", 0) - rows.get("rejected", 0),
        "overdue": 6,
        "returned": 5,
        "reworked": 6,
        "closure_rate": round(rows.get("verified", 0) / accepted, 4),
    }


def test_a_draft_cites_figures_hot_spots_trend_open_reports_and_a_map(api, town):
    admin = _as(town, "admin", "chief")
    r = api.post("/api/v1/letters", json={"department": HOUSING}, headers=admin)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "draft" and d["number"] is None and d["department"] == HOUSING
    since = datetime.fromisoformat(d["period"]["since"])
    assert datetime.fromisoformat(d["period"]["until"]) - since == timedelta(days=90)
    assert d["scope"] == {**d["scope"], "department": HOUSING, "districts": [], "theme": None}
    want = _expected(town, since)
    assert want["received"] == 78  # 72 in the cluster, 6 scattered; not the fire, not March
    assert {k: d["figures"][k] for k in want} == want
    per = {c["category"]: c for c in d["by_category"]}
    assert set(per) == {"unsafe_appliance", "dilapidated_housing"}
    assert per["unsafe_appliance"]["received"] + per["dilapidated_housing"]["received"] == 78
    # Gi*: the cluster's centre is a hot spot, the fire corner is not (another department's).
    hot = {g["code"]: g for g in d["hotspots"]["grids"]}
    assert block_code(2, 2) in hot and hot[block_code(2, 2)]["count"] == 8
    assert set(hot) <= {block_code(i, j) for i in range(5) for j in range(5)}
    assert block_code(7, 7) not in hot and d["hotspots"]["total"] == 78
    # The trend: weekly slices over 90 days, reports per slice adding up to the figures.
    assert d["trend"]["step"] == "week" and d["trend"]["slices"] == 13
    assert sum(s["count"] for s in d["trend"]["series"]) == 78
    assert sum(d["trend"]["patterns"].values()) == 100
    # Open reports whatever their date: March's is the longest overdue, listed first.
    o = d["open_reports"]
    assert o["total"] == want["open"] + 1 and o["overdue"] == 7
    first = o["items"][0]
    assert first["reported_at"].startswith("2024-03-04") and first["overdue"]
    assert first["overdue_by"]["unit"] in ("working_days", "working_hours")
    cal = calendar(WorkTimeSettings())
    now = datetime.fromisoformat(o["as_of"])
    age = cal.working_time_between(OLD_REPORTED, now) / cal.day_length
    assert first["age_working_days"] == pytest.approx(age, abs=0.05) and age > 300
    assert [i["overdue"] for i in o["items"]] == sorted(
        (i["overdue"] for i in o["items"]), reverse=True
    )
    # Recommendations drafted from the findings, as editable text.
    rec = d["recommendations"]
    assert "超期未办结的 7 件" in rec and "热点网格" in rec and rec.startswith("1. ")
    assert d["moves"] == [{"move": "issue", "roles": ["dispatcher", "admin"]}]
    # The map: every grid's outline (a small frame), classes, dots for open reports, metres.
    page = api.get(d["url"], params={"format": "html"}, headers=admin)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" in page.headers["content-security-policy"]
    html = page.text
    assert html.count('<path d="M') >= 100 and "热点 99%" in html and "未办结事件" in html
    assert "1 km (1,000 m)" in html and "http://" not in html and "https://" not in html
    with town.connect() as conn:
        m = conn.execute(text("SELECT content->'map' FROM letters")).scalar_one()
    assert m["outlines"] and len(m["grids"]) == 100 and m["scale"]["metres"] == 1000
    frame_w = m["frame_m"][2] - m["frame_m"][0]
    assert m["scale"]["px"] == pytest.approx(1000 * WIDTH / frame_w, abs=0.1)
    assert len(m["dots"]) == o["total"] and m["overdue"] == 7
    assert all(0 <= p["x"] <= m["width"] and 0 <= p["y"] <= m["height"] for p in m["dots"])


def test_the_loop_its_refusals_rights_pdf_and_attachments(api, town):
    admin = _as(town, "admin", "chief")
    dispatcher = _as(town, "dispatcher", "desk")
    housing = _as(town, "department", "zjj", department=HOUSING)
    gas = _as(town, "department", "gas", department=GAS)
    planner = _as(town, "planner", "analyst")
    worker = _as(town, "worker", "wang", grids=(block_code(0, 0),))
    body = {"department": HOUSING, "theme": "gas"}
    assert api.post("/api/v1/letters", json=body, headers=worker).status_code == 403
    assert api.get("/api/v1/letters", headers=worker).status_code == 403
    wrong = api.post("/api/v1/letters", json={**body, "theme": "fire"}, headers=admin)
    assert wrong.status_code == 422 and "gas" in wrong.json()["detail"]
    unknown = api.post("/api/v1/letters", json={"department": "无此部门"}, headers=admin)
    assert unknown.status_code == 422 and HOUSING in unknown.json()["detail"]
    d = api.post("/api/v1/letters", json=body, headers=dispatcher).json()
    url = d["url"]
    assert d["figures"]["received"] == 72  # the gas theme only
    # A draft is the sender's: the department does not see it yet, planners do.
    assert api.get(url, headers=housing).status_code == 404
    assert api.get(url, headers=planner).status_code == 200
    edited = api.patch(
        url,
        json={"recommendations": "1. 立即排查。", "subject": "关于燃气风险的提示函"},
        headers=dispatcher,
    )
    assert edited.status_code == 200 and edited.json()["recommendations"] == "1. 立即排查。"
    assert api.post(f"{url}/issue", headers=planner).status_code == 403
    for move in ("acknowledge", "close"):
        refused = api.post(f"{url}/{move}", headers=admin)
        assert refused.status_code == 409 and "possible now: issue" in refused.json()["detail"]
    issued = api.post(f"{url}/issue", headers=dispatcher)
    assert issued.status_code == 200, issued.text
    i = issued.json()
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    assert i["number"] == f"〔{year}〕第1号" and i["status"] == "issued" and i["reply_due"]
    due = datetime.fromisoformat(i["reply_due"])
    cal = calendar(WorkTimeSettings())
    assert (
        cal.working_time_between(datetime.fromisoformat(i["issued_at"]), due) == 10 * cal.day_length
    )
    # Frozen: no edit, no second issue; the moves now are the department's.
    frozen = api.patch(url, json={"subject": "改"}, headers=dispatcher)
    assert frozen.status_code == 409 and "frozen" in frozen.json()["detail"]
    again = api.post(f"{url}/issue", headers=admin)
    assert (
        again.status_code == 409
        and f"acknowledge (by a user of {HOUSING}" in again.json()["detail"]
    )
    assert api.get(url, headers=gas).status_code == 404
    assert api.get("/api/v1/letters", headers=gas).json()["matched"] == 0
    assert api.post(f"{url}/acknowledge", headers=gas).status_code == 404
    assert api.post(f"{url}/acknowledge", headers=dispatcher).status_code == 403
    early = api.post(f"{url}/reply", data={"text": "已整改"}, headers=housing)
    assert early.status_code == 409 and "acknowledge" in early.json()["detail"]
    ack = api.post(f"{url}/acknowledge", headers=housing)
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "zjj"
    # The PDF, rendered once here: searchable text with the number, department and figures.
    pdf = api.get(url, params={"format": "pdf"}, headers=housing)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    pages = PdfReader(io.BytesIO(pdf.content)).pages
    words = "".join(p.extract_text() for p in pages).replace(" ", "").replace("\n", "")
    rate = f"{i['figures']['closure_rate'] * 100:.1f}%"
    for expected in (
        f"〔{year}〕第1号",
        HOUSING,
        "结案率",
        rate,
        "关于燃气风险的提示函",
        "立即排查",
    ):
        assert expected in words, expected
    assert "上报事件" in words and str(i["figures"]["received"]) in words
    # Attachments: type by content, size and count limits.
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(png, "PNG")
    exe = api.post(
        f"{url}/reply",
        data={"text": "x"},
        files=[("files", ("a.pdf", b"MZ\x90\x00", "application/pdf"))],
        headers=housing,
    )
    assert exe.status_code == 415 and "PDF, JPEG or PNG" in exe.json()["detail"]
    big = api.post(
        f"{url}/reply",
        data={"text": "x"},
        files=[("files", ("b.pdf", b"%PDF-1.4" + b"0" * 60_000, "application/pdf"))],
        headers=housing,
    )
    assert big.status_code == 413 and "50,000" in big.json()["detail"]
    many = [("files", (f"{n}.png", png.getvalue(), "image/png")) for n in range(11)]
    assert (
        api.post(f"{url}/reply", data={"text": "x"}, files=many, headers=housing).status_code == 422
    )
    assert api.get(url, headers=housing).json()["status"] == "acknowledged"
    files = [
        ("files", ("整改报告.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")),
        ("files", ("现场.png", png.getvalue(), "image/png")),
    ]
    replied = api.post(
        f"{url}/reply", data={"text": "已完成排查整改。"}, files=files, headers=housing
    )
    assert replied.status_code == 200, replied.text
    rep = replied.json()
    assert rep["status"] == "replied" and rep["replied_on_time"] is True
    assert [a["filename"] for a in rep["attachments"]] == ["整改报告.pdf", "现场.png"]
    got = api.get(rep["attachments"][1]["url"], headers=planner)
    assert got.status_code == 200 and got.content == png.getvalue()
    assert got.headers["content-type"] == "image/png"
    assert api.get(rep["attachments"][1]["url"], headers=gas).status_code == 404
    assert api.post(f"{url}/close", headers=housing).status_code == 403
    closed = api.post(f"{url}/close", headers=dispatcher)
    assert closed.status_code == 200 and closed.json()["moves"] == []
    last = api.post(f"{url}/close", headers=admin)
    assert last.status_code == 409 and "closed: nothing follows" in last.json()["detail"]
    with town.connect() as conn:
        actions = conn.execute(
            text("SELECT action, actor FROM audit_log WHERE object_type = 'letter' ORDER BY id")
        ).all()
    assert [tuple(a) for a in actions] == [
        ("letter.draft", "desk"),
        ("letter.edit", "desk"),
        ("letter.issue", "desk"),
        ("letter.acknowledge", "zjj"),
        ("letter.reply", "zjj"),
        ("letter.close", "desk"),
    ]


def test_a_district_dispatcher_writes_for_their_districts_only(api, town):
    admin = _as(town, "admin", "chief")
    local = _as(town, "dispatcher", "local", districts=("230602",))
    other = _as(town, "dispatcher", "other", districts=("230603",))
    away = api.post(
        "/api/v1/letters", json={"department": HOUSING, "districts": ["230603"]}, headers=local
    )
    assert away.status_code == 403 and "230602" in away.json()["detail"]
    mine = api.post("/api/v1/letters", json={"department": HOUSING}, headers=local).json()
    assert mine["scope"]["districts"] == ["230602"] and mine["figures"]["received"] == 78
    city = api.post(
        "/api/v1/letters",
        json={"department": HOUSING, "until": "2025-01-01T00:00:00+08:00"},
        headers=admin,
    ).json()
    assert city["figures"]["received"] == 0 and city["hotspots"]["hot"] == 0
    assert api.get(city["url"], headers=local).status_code == 404
    assert api.get(mine["url"], headers=other).status_code == 404
    seen = api.get("/api/v1/letters", headers=local).json()
    assert [x["id"] for x in seen["letters"]] == [mine["id"]]
    assert api.get("/api/v1/letters", headers=admin).json()["matched"] == 2


def test_overdue_replies_and_the_on_time_reply_rate(api, town):
    admin = _as(town, "admin", "chief")
    housing = _as(town, "department", "zjj", department=HOUSING)
    gas = _as(town, "department", "gas", department=GAS)
    planner = _as(town, "planner", "analyst")
    # Short periods: quick drafts (no trend under three days).
    body = {"since": "2025-01-01T00:00:00+08:00", "until": "2025-01-02T00:00:00+08:00"}
    ids = {}
    for name, dept in (("late", HOUSING), ("on_time", HOUSING), ("waiting", HOUSING),
                       ("silent", HOUSING), ("gas", GAS)):  # fmt: skip
        d = api.post("/api/v1/letters", json={**body, "department": dept}, headers=admin).json()
        assert d["trend"]["step"] is None
        ids[name] = d["url"]
        api.post(f"{d['url']}/issue", headers=admin)
    numbers = [api.get(u, headers=admin).json()["sequence"] for u in ids.values()]
    assert numbers == [1, 2, 3, 4, 5]
    for name in ("late", "on_time"):
        api.post(f"{ids[name]}/acknowledge", headers=housing)
        assert (
            api.post(f"{ids[name]}/reply", data={"text": "已整改"}, headers=housing).status_code
            == 200
        )
    with town.begin() as conn:
        # `late` was replied after its due time; `silent` is past due without a reply.
        conn.execute(
            text("UPDATE letters SET reply_due = replied_at - interval '1 hour' WHERE id = :id"),
            {"id": ids["late"].rsplit("/", 1)[1]},
        )
        conn.execute(
            text("UPDATE letters SET reply_due = now() - interval '1 day' WHERE id = :id"),
            {"id": ids["silent"].rsplit("/", 1)[1]},
        )
    overdue = api.get("/api/v1/letters", params={"overdue": "true"}, headers=admin).json()
    assert [x["url"] for x in overdue["letters"]] == [ids["silent"]]
    assert overdue["letters"][0]["overdue"] is True
    assert (
        api.get("/api/v1/letters", params={"overdue": "false"}, headers=admin).json()["matched"]
        == 4
    )
    by = {
        d["department"]: d
        for d in api.get("/api/v1/letters/stats", headers=planner).json()["departments"]
    }
    assert by[HOUSING] == {
        "department": HOUSING,
        "issued": 4,
        "due": 3,  # late, on_time, silent; `waiting` is within its time
        "replied": 2,
        "replied_on_time": 1,
        "overdue": 1,
        "on_time_reply_rate": round(1 / 3, 4),
    }
    assert by[GAS]["due"] == 0 and by[GAS]["on_time_reply_rate"] is None
    own = api.get("/api/v1/letters/stats", headers=gas).json()
    assert [d["department"] for d in own["departments"]] == [GAS]
    listed = api.get(
        "/api/v1/letters", params={"department": HOUSING, "status": "replied"}, headers=admin
    ).json()
    assert listed["matched"] == 2
