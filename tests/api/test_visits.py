"""Visits (走访排查): idempotent by client id, checked against the campaign's checklist, place
and status; the hazards found stored as reports linked to the visit; coverage and progress
recomputed from the raw rows; a worker's targets still to visit."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from geo.coords import wgs84_to_gcj02
from geo.settings import Settings
from tests.factories import point_m
from tests.geo.campaigns.place import (
    A1,
    A2,
    B1,
    B2,
    C1,
    D_A,
    D_B,
    as_,
    at,
    campaign_body,
    emptied,
    prepared,
)


@pytest.fixture(scope="module")
def place(test_database: tuple[Settings, Engine], tmp_path_factory) -> Engine:
    return prepared(test_database[1], tmp_path_factory.mktemp("campaigns"))


@pytest.fixture
def world(place: Engine) -> Engine:
    return emptied(place)


@pytest.fixture(scope="module")
def api(place: Engine, test_database: tuple[Settings, Engine]) -> Iterator[TestClient]:
    with TestClient(create_app(test_database[0], engine=place)) as c:
        yield c


TZ = ZoneInfo("Asia/Shanghai")


def launched(api, engine, **over) -> dict:
    """Create and launch a campaign (as a city-wide dispatcher); return its headers."""
    boss = as_(engine, "dispatcher")
    assert (
        api.post("/api/v1/campaigns", json=campaign_body(**over), headers=boss).status_code == 201
    )
    code = over.get("code", "CA11")
    assert api.post(f"/api/v1/campaigns/{code}/launch", headers=boss).status_code == 200
    return boss


def visit(grid: str = A1, **over) -> dict:
    lon, lat = at(grid)
    return {
        "id": str(uuid.uuid4()),
        "campaign": "CA11",
        "lon": lon,
        "lat": lat,
        "answers": {"low_lying": True, "to_relocate": 3, "households_moved": 1},
        "leaflets": 2,
        "stickers": 1,
        **over,
    }


def hazard(grid: str = A1, **over) -> dict:
    lon, lat = at(grid, dx=20)
    return {"lon": lon, "lat": lat, "theme": "flood", "category": "waterlogging", **over}


def test_a_visit_is_stored_once_with_its_grid(api, world):
    boss = launched(api, world)
    worker = as_(world, "worker", username="wang", grids=(A1,))
    body = visit()
    r = api.post("/api/v1/visits", json=body, headers=worker)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["grid"]["code"] == A1 and v["district"] == D_A and v["campaign"] == "CA11"
    assert v["assignment"]["method"] == "inside" and v["visitor"] == "wang"
    assert v["answers"] == body["answers"] and v["leaflets"] == 2 and v["reports"] == []
    replay = api.post("/api/v1/visits", json=body, headers=worker)
    assert replay.status_code == 200 and replay.json() == v
    changed = api.post("/api/v1/visits", json={**body, "leaflets": 5}, headers=worker)
    assert changed.status_code == 409 and "already used for a different visit" in changed.text
    # Another worker sending the same id and body is another visit, not a replay.
    other = api.post("/api/v1/visits", json=body, headers=as_(world, "worker", grids=(A1,)))
    assert other.status_code == 409

    # GCJ-02 positions are converted; the sent point is kept.
    lon, lat = at(B2)
    g_lon, g_lat = (float(x) for x in wgs84_to_gcj02(lon, lat))
    gcj = api.post(
        "/api/v1/visits", json=visit(lon=g_lon, lat=g_lat, crs="gcj02"), headers=worker
    ).json()
    assert gcj["grid"]["code"] == B2 and gcj["source"] == {
        "crs": "gcj02",
        "lon": g_lon,
        "lat": g_lat,
    }
    assert abs(gcj["lon"] - lon) < 1e-6

    bad = [
        ({"answers": {"depth": 3}}, "answers.depth: no such item in the checklist of CA11"),
        ({"answers": {"low_lying": 1}}, "answers.low_lying (低洼易涝) is a yes/no item"),
        (
            {"answers": {"low_lying": True, "to_relocate": "3"}},
            "to_relocate (需转移人数) is a number",
        ),
        ({"answers": {"low_lying": True, "to_relocate": -1}}, "send a number from 0"),
        ({"answers": {"low_lying": True, "to_relocate": 2.5}}, "counts relocations: send a whole"),
        ({"answers": {"low_lying": True, "note": 7}}, "answers.note (情况说明) is a text item"),
        ({"answers": {"to_relocate": 1}}, "required item(s) low_lying (低洼易涝) are not answered"),
        ({"lon": at(C1)[0], "lat": at(C1)[1]}, "lies in district 230604, outside campaign CA11"),
        ({"visitor": "li"}, "visitor is not accepted"),
        ({"leaflets": -1}, "leaflets: Input should be greater than or equal to 0"),
        ({"leaflets": True}, "leaflets: Input should be a valid integer"),
        ({"target": "nobody"}, "target 'nobody' is not on the target list of CA11"),
        ({"campaign": "CA99"}, "no campaign with code 'CA99'"),
        ({"visited_at": "2999-01-01T00:00:00+08:00"}, "is in the future"),
    ]
    for change, words in bad:
        r = api.post("/api/v1/visits", json=visit(**change), headers=worker)
        assert r.status_code in (404, 422), (change, r.text)
        assert words in r.json()["detail"], (change, r.json()["detail"])

    assert api.post("/api/v1/visits", json=visit(), headers=boss).status_code == 403
    planner = api.post("/api/v1/visits", json=visit(), headers=as_(world, "planner"))
    assert planner.status_code == 403 and "visits are made by a worker or an admin" in planner.text

    # Paused: no visits, but one made while it ran (an offline queue) is still taken.
    ran_at = datetime.now(UTC)
    assert api.post("/api/v1/campaigns/CA11/pause", headers=boss).status_code == 200
    paused = api.post("/api/v1/visits", json=visit(), headers=worker)
    assert paused.status_code == 409 and "it is paused" in paused.json()["detail"]
    queued = api.post("/api/v1/visits", json=visit(visited_at=ran_at.isoformat()), headers=worker)
    assert queued.status_code == 201, queued.text
    early = (ran_at - timedelta(days=2)).isoformat()  # before the launch
    assert (
        api.post("/api/v1/visits", json=visit(visited_at=early), headers=worker).status_code == 409
    )
    assert api.post("/api/v1/campaigns/CA11/close", headers=boss).status_code == 200
    closed = api.post("/api/v1/visits", json=visit(), headers=worker)
    assert closed.status_code == 409 and "it is closed" in closed.json()["detail"]
    # The replay of a stored visit still answers, closed or not.
    assert api.post("/api/v1/visits", json=body, headers=worker).status_code == 200

    with world.connect() as conn:
        rows = conn.execute(text("SELECT count(*), count(DISTINCT user_id) FROM visits")).one()
        audited = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'visit.create'")
        ).scalar()
    assert tuple(rows) == (3, 1) and audited == 3


def test_a_draft_takes_no_visits(api, world):
    boss = as_(world, "dispatcher")
    api.post("/api/v1/campaigns", json=campaign_body(), headers=boss)
    r = api.post("/api/v1/visits", json=visit(), headers=as_(world, "worker", grids=(A1,)))
    assert r.status_code == 409 and "not been launched yet" in r.json()["detail"]


def test_hazards_found_on_a_visit_are_reports_linked_to_it(api, world):
    launched(api, world)
    worker = as_(world, "worker", grids=(A1,))
    rid = str(uuid.uuid4())
    body = visit(reports=[hazard(id=rid, severity=3), hazard(category="relocation_needed")])
    r = api.post("/api/v1/visits", json=body, headers=worker)
    assert r.status_code == 201, r.text
    found = r.json()["reports"]
    # Listed by their reported time, then id: both were found at the visit's time.
    assert sorted(x["category"] for x in found) == ["relocation_needed", "waterlogging"]
    first = next(x for x in found if x["category"] == "waterlogging")
    assert first["id"] == rid and first["status"] == "reported" and first["grid"] == A1
    report = api.get(f"/api/v1/reports/{rid}", headers=worker).json()
    assert report["campaign"] == "CA11" and report["severity"] == 3
    assert api.post("/api/v1/visits", json=body, headers=worker).json()["reports"] == found

    # A report naming another campaign, or one intake refuses, refuses the whole visit.
    refused = [
        ([hazard(campaign="CA04")], "reports[0]: campaign CA04 is not the visit's (CA11)"),
        ([hazard(), hazard(category="gas_leak")], "reports[1]: unknown category 'gas_leak'"),
        (
            [hazard(theme="flood", category="waterlogging", lon=200)],
            "reports.0: lon must be within -180..180",
        ),
    ]
    for reports, words in refused:
        r = api.post("/api/v1/visits", json=visit(reports=reports), headers=worker)
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    # The same id with another body is another report: refused as intake refuses it.
    again = api.post("/api/v1/visits", json=visit(reports=[hazard(id=rid)]), headers=worker)
    assert again.status_code == 409 and "reports[0]: id" in again.json()["detail"]
    # A report the phone had already sent on its own is linked to the visit that lists it
    # (the identical report: intake's replay), but only to one visit.
    t = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    sent = hazard(id=str(uuid.uuid4()), campaign="CA11", reported_at=t)
    assert api.post("/api/v1/reports", json=sent, headers=worker).status_code == 201
    second = visit(reports=[sent])
    r = api.post("/api/v1/visits", json=second, headers=worker)
    assert r.status_code == 201 and [x["id"] for x in r.json()["reports"]] == [sent["id"]]
    third = api.post("/api/v1/visits", json=visit(reports=[sent]), headers=worker)
    assert third.status_code == 409 and "was found on another visit" in third.json()["detail"]
    with world.connect() as conn:
        stored = Counter(
            conn.execute(text("SELECT visit_id::text, campaign_code FROM reports")).all()
        )
        visits_n = conn.execute(text("SELECT count(*) FROM visits")).scalar()
    assert visits_n == 2 and stored == {(body["id"], "CA11"): 2, (second["id"], "CA11"): 1}
    progress = api.get("/api/v1/campaigns/CA11/progress", headers=worker).json()
    assert progress["totals"]["hazards_found"] == 3 and progress["totals"]["visits"] == 2


def _local_day(t: datetime) -> str:
    return t.astimezone(TZ).date().isoformat()


def test_coverage_and_progress_match_the_raw_rows(api, world):
    """Three local days, two districts: visits posted with their times, their hazards, one
    campaign-tagged report from outside any visit, and resolutions dated by events."""
    now = datetime.now(UTC)
    launched(
        api,
        world,
        starts_on=_local_day(now - timedelta(days=3)),
        ends_on=_local_day(now + timedelta(days=5)),
    )
    workers = {g: as_(world, "worker", grids=(g,)) for g in (A1, A2, B1)}
    today = datetime.now(TZ).replace(hour=9, minute=0, second=0, microsecond=0)
    plan = [
        # (days ago, local hour, grid, people to relocate, households, leaflets, hazards)
        (2, 9, A1, 3, 1, 2, 1),
        (2, 23, A1, 0, 0, 1, 0),  # 23:30 local is the day before in UTC
        (2, 10, B1, 5, 2, 0, 2),
        (1, 0, A2, 0, 0, 4, 0),  # 00:30 local is the previous evening in UTC
        (1, 15, B1, 2, 1, 3, 1),
        (0, 8, A1, 1, 1, 0, 1),
        (0, 8, A1, 0, 0, 0, 0),
    ]
    sent = []
    for ago, hour, grid, people, hh, leaflets, n in plan:
        t = (today - timedelta(days=ago)).replace(hour=hour, minute=30)
        if t > datetime.now(TZ):
            t = datetime.now(TZ) - timedelta(minutes=1)
        answers = {"low_lying": bool(people), "to_relocate": people, "households_moved": hh}
        body = visit(grid, answers=answers, leaflets=leaflets, visited_at=t.isoformat(),
                     reports=[hazard(grid) for _ in range(n)])  # fmt: skip
        r = api.post("/api/v1/visits", json=body, headers=workers.get(grid, workers[A1]))
        assert r.status_code == 201, r.text
        sent.append(r.json())
    # A campaign-tagged report sent on its own (no visit) counts as found too.
    lon, lat = at(B1, dx=-40)
    day_before = (today - timedelta(days=1)).isoformat()
    alone = {"lon": lon, "lat": lat, "theme": "flood", "category": "waterlogging",
             "campaign": "CA11", "reported_at": day_before}  # fmt: skip
    assert api.post("/api/v1/reports", json=alone, headers=workers[B1]).status_code == 201
    with world.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM reports ORDER BY reported_at, id"))]
        # Resolve three of them on chosen days (raw rows: status and the event), one of them
        # reworked and resolved again later: it counts once, on the later day.
        resolved = {ids[0]: [2, 1], ids[2]: [1], ids[4]: [0]}
        for rid, days in resolved.items():
            for ago in days:
                at_t = (today - timedelta(days=ago)).replace(hour=16)
                conn.execute(
                    text(
                        "INSERT INTO report_events (report_id, kind, from_status, to_status, at) "
                        "VALUES (:r, 'transition', 'in_progress', 'resolved', :at)"
                    ),
                    {"r": rid, "at": at_t},
                )
            conn.execute(
                text(
                    "UPDATE reports SET status = 'resolved', resolution_level = 'grid' "
                    "WHERE id = :r"
                ),
                {"r": rid},
            )
        conn.execute(text("UPDATE reports SET status = 'duplicate' WHERE id = :r"), {"r": ids[1]})
        conn.execute(text("UPDATE reports SET status = 'rejected' WHERE id = :r"), {"r": ids[3]})

    # Expected, from the raw rows.
    with world.connect() as conn:
        vrows = conn.execute(
            text(
                "SELECT visited_at, district_code, grid_code, answers, leaflets, stickers "
                "FROM visits"
            )
        ).all()
        rrows = conn.execute(
            text("SELECT id, reported_at, district_code, status FROM reports")
        ).all()
        events = conn.execute(
            text("SELECT report_id, at FROM report_events WHERE to_status = 'resolved'")
        ).all()
    want: dict[tuple, Counter] = defaultdict(Counter)
    for t, d, _, a, leaflets, stickers in vrows:
        c = want[(_local_day(t), d)]
        c["visits"] += 1
        c["relocations"] += a["to_relocate"]
        c["relocated_households"] += a["households_moved"]
        c["leaflets"] += leaflets
        c["stickers"] += stickers
    last_resolved = {}
    for rid, t in events:
        last_resolved[rid] = max(t, last_resolved.get(rid, t))
    for rid, t, d, status in rrows:
        if status == "duplicate":
            continue
        want[(_local_day(t), d)]["hazards_found"] += 1
        if status in ("resolved", "verified"):
            want[(_local_day(last_resolved[rid]), d)]["hazards_resolved"] += 1

    got = api.get("/api/v1/campaigns/CA11/progress", headers=workers[A1]).json()
    assert got["timezone"] == "Asia/Shanghai"
    figures = ("visits", "hazards_found", "hazards_resolved", "relocations",
               "relocated_households", "leaflets", "stickers")  # fmt: skip
    for row in got["days"]:
        for f in figures:
            assert row[f] == want[(row["day"], row["district"])][f], (row, f)
    seen = {(r["day"], r["district"]) for r in got["days"]}
    assert {k for k, c in want.items() if sum(c.values())} <= seen
    assert len({r["day"] for r in got["days"]}) == 4  # from the start, three days ago
    for f in figures:
        assert got["totals"][f] == sum(c[f] for c in want.values()), f
    assert got["totals"]["visits"] == 7 and got["totals"]["hazards_found"] == 5
    assert got["totals"]["relocations"] == 11 and got["totals"]["hazards_resolved"] == 3
    last = {d: [r for r in got["days"] if r["district"] == d][-1] for d in (D_A, D_B)}
    for d in (D_A, D_B):
        for f in figures:
            assert last[d]["cumulative"][f] == sum(c[f] for (_, dd), c in want.items() if dd == d)
    only_b = api.get(
        "/api/v1/campaigns/CA11/progress", params={"district": D_B}, headers=workers[B1]
    )
    assert {r["district"] for r in only_b.json()["days"]} == {D_B}
    assert only_b.json()["totals"]["visits"] == 2
    wrong = api.get(
        "/api/v1/campaigns/CA11/progress", params={"district": "230604"}, headers=workers[B1]
    )
    assert wrong.status_code == 422

    cov = api.get("/api/v1/campaigns/CA11/coverage", headers=as_(world, "planner"))
    assert cov.status_code == 200 and cov.headers["content-type"].startswith("application/geo+json")
    fc = orjson.loads(cov.content)
    props = {f["properties"]["grid"]: f["properties"] for f in fc["features"]}
    assert set(props) == {A1, A2, B1, B2}  # the grids of districts A and B, not C's
    per_grid = Counter(
        g for *_, g, _, _, _ in [(t, d, g, a, lf, st) for t, d, g, a, lf, st in vrows]
    )
    for grid, p in props.items():
        assert p["visits"] == per_grid[grid] and p["visited"] == (per_grid[grid] > 0)
        if per_grid[grid]:
            latest = max(t for t, _, g, *_ in vrows if g == grid)
            assert p["last_visit"] == latest.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert fc["totals"]["grids_visited"] == 3 and fc["totals"]["visits"] == 7
    assert fc["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_targets_from_the_register_and_a_workers_list_to_visit(api, world):
    spec = {"register": "households", "filter": {"living_alone_over": 60}}
    boss = launched(api, world, targets=spec)
    with world.connect() as conn:
        taken = dict(
            conn.execute(text("SELECT grid_code, count(*) FROM campaign_targets GROUP BY 1")).all()
        )
    assert taken == {A1: 3, A2: 1, B1: 2}  # alone and over 60, in districts A and B
    worker = as_(world, "worker", username="zhao", grids=(A1,))
    todo = api.get("/api/v1/campaigns/CA11/targets", params={"todo": "mine"}, headers=worker)
    assert todo.status_code == 200 and todo.headers["cache-control"] == "no-store"
    mine = todo.json()["targets"]
    assert len(mine) == 3 and {t["grid_code"] for t in mine} == {A1}
    assert all(t["living_alone"] and t["oldest_age"] > 60 and t["head_name"] for t in mine)
    ref = mine[0]["ref"]
    v = api.post("/api/v1/visits", json=visit(target=ref), headers=worker)
    assert v.status_code == 201 and v.json()["target"]["ref"] == ref
    by_id = api.post("/api/v1/visits", json=visit(target=mine[1]["id"]), headers=worker)
    assert by_id.json()["target"]["ref"] == mine[1]["ref"]
    left = api.get("/api/v1/campaigns/CA11/targets", params={"todo": "mine"}, headers=worker)
    assert [t["ref"] for t in left.json()["targets"]] == [mine[2]["ref"]]
    with world.connect() as conn:
        reads = conn.execute(
            text(
                "SELECT actor, people FROM audit_log WHERE action = 'personal_data.read' "
                "AND object_type = 'campaign_targets' ORDER BY id"
            )
        ).all()
    assert reads == [("zhao", 3), ("zhao", 1)]
    assert (
        api.get("/api/v1/campaigns/CA11/targets", params={"todo": "mine"}, headers=boss).status_code
        == 422
    )

    # A dispatcher and a planner get counts, never the households; 2 visited (< k) withheld,
    # as the coverage's totals withhold it.
    for who in (boss, as_(world, "planner")):
        counts = api.get("/api/v1/campaigns/CA11/targets", headers=who).json()
        assert counts["targets"] is None and counts["total"] == 6 and counts["visited"] is None
        assert counts["suppressed"] is True
    everything = api.get("/api/v1/campaigns/CA11/targets", headers=as_(world, "admin")).json()
    assert everything["total"] == 6 and len(everything["targets"]) == 6

    # Coverage: a planner sees the per-grid target counts below k withheld; the admin exact.
    def coverage(headers) -> dict:
        fc = orjson.loads(api.get("/api/v1/campaigns/CA11/coverage", headers=headers).content)
        return {f["properties"]["grid"]: f["properties"] for f in fc["features"]} | {
            "totals": fc["totals"]
        }

    exact = coverage(as_(world, "admin"))
    assert (exact[A1]["targets"], exact[A1]["targets_visited"]) == (3, 2)
    assert exact["totals"]["targets"] == 6 and exact["totals"]["targets_visited"] == 2
    hidden = coverage(as_(world, "planner"))
    assert hidden[A1]["targets"] is None and hidden[A1]["suppressed"] is True
    assert hidden[B2]["targets"] == 0 and hidden[A1]["visits"] == 2


def test_workshops_are_imported_as_points(api, world):
    items = [{"code": "exit_clear", "label": "安全出口畅通", "answer": "yes_no"}]
    boss = launched(api, world, code="CA16", theme="fire", categories=[],
                    targets={"register": "workshops"}, checklist=items)  # fmt: skip

    def point(ref: str, grid: str, dx: float = 0, dy: float = 0) -> dict:
        lon, lat = at(grid, dx=dx, dy=dy)
        return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"ref": ref, "name": f"作坊{ref}", "trade": "食品"}}  # fmt: skip

    fc = {
        "type": "FeatureCollection",
        "features": [point("W1", A1), point("W2", A1, 50), point("W3", B1)],
    }
    r = api.post("/api/v1/campaigns/CA16/targets", json=fc, headers=boss)
    assert r.status_code == 200 and r.json() == {
        "received": 3,
        "added": 3,
        "changed": 0,
        "unchanged": 0,
    }
    fc["features"][2] = point("W3", B2)
    again = api.post("/api/v1/campaigns/CA16/targets", json=fc, headers=boss).json()
    assert again == {"received": 3, "added": 0, "changed": 1, "unchanged": 2}
    outside = {"type": "FeatureCollection", "features": [point("W4", C1)]}
    r = api.post("/api/v1/campaigns/CA16/targets", json=outside, headers=boss)
    assert r.status_code == 422 and "features[0] (W4): in district 230604" in r.json()["detail"]
    far = {"type": "FeatureCollection", "features": [point("W5", A1, dy=800)]}
    assert (
        "outside every grid"
        in api.post("/api/v1/campaigns/CA16/targets", json=far, headers=boss).json()["detail"]
    )
    worker = as_(world, "worker", grids=(A1,))
    assert api.post("/api/v1/campaigns/CA16/targets", json=fc, headers=worker).status_code == 403
    listed = api.get("/api/v1/campaigns/CA16/targets", headers=as_(world, "planner")).json()
    assert [(t["ref"], t["grid_code"]) for t in listed["targets"]] == [
        ("W1", A1),
        ("W2", A1),
        ("W3", B2),
    ]
    assert listed["targets"][0]["attributes"] == {"trade": "食品"}
    lon, lat = point_m(*[c + 1 for c in (250, 250)])
    body = visit(campaign="CA16", lon=lon, lat=lat, answers={"exit_clear": False}, target="W1")
    assert api.post("/api/v1/visits", json=body, headers=worker).status_code == 201
    todo = api.get("/api/v1/campaigns/CA16/targets", params={"todo": "mine"}, headers=worker)
    assert [t["ref"] for t in todo.json()["targets"]] == ["W2"]
    cov = orjson.loads(api.get("/api/v1/campaigns/CA16/coverage", headers=worker).content)
    a1 = next(f["properties"] for f in cov["features"] if f["properties"]["grid"] == A1)
    assert (a1["targets"], a1["targets_visited"], a1["visits"]) == (2, 1, 1)
