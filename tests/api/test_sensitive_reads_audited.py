"""Reads of a sensitive report shown unmasked are audited: one `personal_data.read` entry per
request naming it (the report, the list, the CSV export, its page, the console's queue, its
photo, the inbox, a worker's phone lists); a masked reader, or a list without a sensitive
report, writes none."""

from __future__ import annotations

import csv
import io
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from geo.settings import PhotoSettings
from tests.api.test_photos import photo
from tests.api.test_reports import WEST, grids, report  # noqa: F401 - the grids fixture
from tests.factories import after_photo, login_as, point_m

QUARREL = "张家和李家为占楼道吵架"
MEDIATION = "街道综治中心"


@pytest.fixture
def town(grids, settings, tmp_path):  # noqa: F811 - the fixture imported above
    """A dispute report with a description and a photo, a gas report with a photo, and clients
    of a dispatcher, a planner and the mediation centre (the dispute dispatched to it)."""
    photos = PhotoSettings(folder=tmp_path / "photos")
    app = create_app(settings.model_copy(update={"photos": photos}), engine=grids)

    def as_(role: str, **scope) -> TestClient:
        token = login_as(grids, role, **scope)
        return TestClient(app, headers={"Authorization": f"Bearer {token}"})

    clients = {
        "admin": as_("admin"),
        "dispatcher": as_("dispatcher"),
        "planner": as_("planner"),
        "mediation": as_("department", department=MEDIATION),
        "worker": as_("worker", grids=(WEST,)),
    }
    with ExitStack() as stack:
        for client in clients.values():
            stack.enter_context(client)
        ids, urls = _sent(clients["admin"])
        yield grids, ids, urls, clients


def _sent(admin: TestClient) -> tuple[dict, dict]:
    """Send the dispute and the gas report with a photo each: their ids and photo urls."""
    ids, urls = {}, {}
    for name, x, body in (
        ("dispute", 100, {"theme": "dispute", "category": "neighbour", "description": QUARREL}),
        ("gas", 300, {"description": "燃气表漏气"}),
    ):
        r = admin.post("/api/v1/reports", json=report(x, **body))
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        shot = photo(seed=x, at=point_m(x, 50), taken=None)
        up = admin.post(
            f"/api/v1/reports/{ids[name]}/photos",
            files={"file": ("p.jpg", shot, "image/jpeg")},
            data={"kind": "site"},
        )
        assert up.status_code == 201, up.text
        urls[name] = up.json()["url"]
    return ids, urls


def reads(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, object_type, object_id, request_id, changes, people "
                "FROM audit_log WHERE action = 'personal_data.read' ORDER BY id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def names(entry: dict) -> set[str]:
    """The reports an entry names: its object id, or the ids it lists."""
    if entry["object_type"] == "report":
        return {entry["object_id"]}
    return set(entry["changes"]["reports"])


def test_each_unmasked_read_of_a_dispute_report_is_one_entry_with_its_request_id(town):
    db, ids, urls, c = town
    d, rid = c["dispatcher"], ids["dispute"]
    requests = {
        "single": lambda h: d.get(f"/api/v1/reports/{rid}", headers=h),
        "list": lambda h: d.get("/api/v1/reports", headers=h),
        "csv": lambda h: d.get("/api/v1/reports", params={"format": "csv"}, headers=h),
        "page": lambda h: d.get(f"/console/reports/{rid}", headers=h),
        "queue": lambda h: d.get("/console", headers=h),
        "photo": lambda h: d.get(urls["dispute"], headers=h),
        "thumb": lambda h: d.get(urls["dispute"] + "/thumb", headers=h),
    }
    before = len(reads(db))
    for name, call in requests.items():
        r = call({"X-Request-ID": f"desk-{name}"})
        assert r.status_code == 200, (name, r.text)
        assert r.headers["cache-control"] == "no-store", name
        if name not in ("photo", "thumb"):
            assert QUARREL in (r.content.decode("utf-8-sig") if name == "csv" else r.text), name
    entries = reads(db)[before:]
    assert [e["request_id"] for e in entries] == [f"desk-{n}" for n in requests]
    for e in entries:
        assert names(e) == {rid} and e["people"] == 1 and e["actor"].startswith("dispatcher")
    kinds = {e["request_id"]: e["object_type"] for e in entries}
    assert kinds["desk-single"] == kinds["desk-page"] == kinds["desk-photo"] == "report"
    assert kinds["desk-list"] == kinds["desk-csv"] == kinds["desk-queue"] == "reports"
    assert entries[1]["changes"] == {"reports": [rid], "count": 1, "listed": 1}
    # What the dispatcher was shown is the whole report.
    assert d.get(f"/api/v1/reports/{rid}").json()["description"] == QUARREL
    exported = d.get("/api/v1/reports", params={"format": "csv"}).content.decode("utf-8-sig")
    assert QUARREL in exported


def test_a_planner_sees_the_dispute_report_masked_and_writes_no_entry(town):
    db, ids, urls, c = town
    p, rid = c["planner"], ids["dispute"]
    before = len(reads(db))
    one = p.get(f"/api/v1/reports/{rid}")
    assert one.status_code == 200 and one.json()["description"] is None
    assert one.json()["reporter"] is None and "cache-control" not in one.headers
    listed = {f["id"]: f["properties"] for f in p.get("/api/v1/reports").json()["features"]}
    assert listed[rid]["masked"] and listed[rid]["description"] is None
    rows = list(
        csv.DictReader(
            io.StringIO(
                p.get("/api/v1/reports", params={"format": "csv"}).content.decode("utf-8-sig")
            )
        )
    )
    masked = {row["id"]: row for row in rows}[rid]
    assert masked["masked"] == "t" and masked["description"] == "" and masked["reporter"] == ""
    page = p.get(f"/console/reports/{rid}")
    assert page.status_code == 200 and QUARREL not in page.text
    assert p.get(urls["dispute"]).status_code == 404
    assert p.get(urls["dispute"] + "/thumb").status_code == 404
    assert reads(db)[before:] == []


def test_reads_without_a_sensitive_report_write_nothing(town):
    db, ids, urls, c = town
    d = c["dispatcher"]
    before = len(reads(db))
    page = d.get("/api/v1/reports", params={"theme": "gas"})
    assert [f["id"] for f in page.json()["features"]] == [ids["gas"]]
    assert "cache-control" not in page.headers
    exported = d.get("/api/v1/reports", params={"format": "csv", "theme": "gas"})
    assert ids["gas"] in exported.text and "cache-control" not in exported.headers
    # The sensitive report exists, but this filter does not show it.
    far = d.get("/api/v1/reports", params={"format": "csv", "grid": "230602001001002"})
    assert far.status_code == 200 and ids["dispute"] not in far.text
    assert d.get(f"/api/v1/reports/{ids['gas']}").status_code == 200
    assert d.get(f"/console/reports/{ids['gas']}").status_code == 200
    queue = d.get("/console", params={"theme": "gas"})
    assert queue.status_code == 200 and ids["gas"][:8] in queue.text
    shot = d.get(urls["gas"])
    assert shot.status_code == 200 and shot.headers["cache-control"].startswith("private")
    assert reads(db)[before:] == []


def test_the_inbox_showing_a_dispatched_dispute_report_is_audited(town):
    db, ids, _, c = town
    d, rid = c["dispatcher"], ids["dispute"]
    for to, kw in (("accepted", {}), ("dispatched", {"department": MEDIATION})):
        r = d.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})
        assert r.status_code == 200, r.text
    before = len(reads(db))
    inbox = c["mediation"].get("/inbox", headers={"X-Request-ID": "inbox-1"})
    assert inbox.status_code == 200 and QUARREL in inbox.text
    (entry,) = reads(db)[before:]
    assert names(entry) == {rid} and entry["request_id"] == "inbox-1"
    assert entry["actor"].startswith("department")


def test_a_worker_s_phone_lists_showing_a_dispute_description_are_audited(town):
    db, _, _, c = town
    w, admin = c["worker"], c["admin"]
    sent = w.post("/api/v1/reports", json=report(150, theme="dispute", category="family",
                                                  description="夫妻争吵"))  # fmt: skip
    assert sent.status_code == 201, sent.text
    rid = sent.json()["id"]
    before = len(reads(db))
    mine = w.get("/report/mine", headers={"X-Request-ID": "phone-mine"})
    assert mine.status_code == 200 and "夫妻争吵" in mine.text
    for to, kw in (
        ("accepted", {}),
        ("dispatched", {"department": "司法所"}),
        ("in_progress", {}),
        ("resolved", {"level": "grid"}),
    ):
        if to == "resolved":
            after_photo(db, rid)
        r = admin.post(f"/api/v1/reports/{rid}/transitions", json={"to": to, **kw})
        assert r.status_code == 200, r.text
    checks = w.get("/report/checks", headers={"X-Request-ID": "phone-checks"})
    assert checks.status_code == 200 and "夫妻争吵" in checks.text
    entries = reads(db)[before:]
    assert [(e["request_id"], names(e)) for e in entries] == [
        ("phone-mine", {rid}),
        ("phone-checks", {rid}),
    ]
