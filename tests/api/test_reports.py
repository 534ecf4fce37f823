"""Report intake, assignment rules, idempotency and the closed loop, on real PostGIS."""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import prcoords
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from boundaries.importer import ImportOptions, import_file
from geo.coords import gcj02_to_bd09, wgs84_to_gcj02
from geo.settings import ImportSettings, get_settings
from tests.factories import after_photo, grid_frame, login_as, point_m, square_m, tiled, write

WEST, EAST, SCHOOL = "230602001001001", "230602001001002", "230602001001901"


def logged_in(app, token: str) -> TestClient:
    """Return a client of `app` that sends `token`."""
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def layout(rows_east_size: float = 500):
    return [
        *tiled(1),
        {
            "code": EAST,
            "name": "东侧网格",
            "kind": "comprehensive",
            "community_code": "230602001001",
            "geometry": square_m(500, 0, rows_east_size),
        },
        {
            "code": SCHOOL,
            "name": "实验小学",
            "kind": "exclusive",
            "category": "school",
            "community_code": "230602001001",
            "geometry": square_m(200, 200, 100),
        },
    ]


@pytest.fixture
def grids(db, tmp_path):
    """West and east 500 m grids sharing an edge at x=500 m, a 100 m school inside the west."""
    district = [
        {
            "code": "230602",
            "name": "萨尔图区",
            "level": "district",
            "geometry": square_m(-5000, -5000, 12000),
        }
    ]
    import_file(
        db,
        write(grid_frame(district), tmp_path / "a.geojson"),
        ImportOptions(layer="areas"),
        ImportSettings(),
    )
    import_file(
        db, write(grid_frame(layout()), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO campaigns VALUES ('CA04', '创安四号', 'flood', '2023-07-25', "
                "'2023-07-29', NULL), ('CA11', '创安十一号', 'gas', current_date - 3, "
                "current_date + 3, NULL)"
            )
        )
    return db


def report(x=250.0, y=50.0, **kw):
    lon, lat = point_m(x, y)
    return {"lon": lon, "lat": lat, "theme": "gas", "category": "gas_leak", **kw}


def count(db):
    with db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM reports")).scalar()


def post(client, body, **kw):
    return client.post("/api/v1/reports", json=body, **kw)


# --- assignment rules -----------------------------------------------------------------------


def test_point_inside_a_grid_is_assigned_and_routed(db, settings, grids):
    token = login_as(db, "worker", "wang-wgy", grids=(WEST,))
    with logged_in(create_app(settings, engine=db), token) as c:
        r = post(c, report(250, 50))
    assert r.status_code == 201
    body = r.json()
    assert body["reporter"] == "wang-wgy"  # the logged-in user, never what the body says
    assert body["grid"] == {"code": WEST, "name": "测试网格1", "kind": "comprehensive"}
    assert body["assignment"] == {"method": "inside", "distance_m": 0.0, "near_boundary": None}
    assert body["status"] == "reported" and body["department"] == "燃气公司"
    assert body["district"] == "230602"


def test_exclusive_grid_wins_over_the_comprehensive_grid_beneath(client, grids):
    body = post(client, report(250, 250)).json()
    assert body["grid"]["code"] == SCHOOL and body["assignment"]["method"] == "exclusive"


def test_point_on_shared_edge_goes_to_lowest_code_every_time(client, grids):
    west = layout()[0]["geometry"].exterior.coords
    east = layout()[1]["geometry"].exterior.coords
    lon, lat = next(c for c in west if c in east)
    for _ in range(3):
        body = post(client, {"lon": lon, "lat": lat, "theme": "gas", "category": "gas_leak"}).json()
        assert body["grid"]["code"] == WEST and body["assignment"]["method"] == "inside"


def test_point_just_outside_snaps_to_nearest_grid_with_metres(client, grids):
    body = post(client, report(1100, 250)).json()  # 100 m east of the east grid
    assert body["grid"]["code"] == EAST and body["assignment"]["method"] == "nearest"
    assert body["assignment"]["distance_m"] == pytest.approx(100, abs=1.0)


def test_point_beyond_snap_is_kept_unassigned_for_triage(client, grids):
    body = post(client, report(1600, 250)).json()  # 600 m out: beyond 150 m, inside the area
    assert body["grid"] is None and body["assignment"]["method"] == "unassigned"
    queue = client.get("/api/v1/reports", params={"assignment": "unassigned"}).json()
    assert [f["id"] for f in queue["features"]] == [body["id"]]


def test_snap_tolerance_is_a_setting(db, settings, grids):
    rules = settings.reports.model_copy(update={"snap_tolerance_m": 50.0})
    app = create_app(settings.model_copy(update={"reports": rules}), engine=db)
    with logged_in(app, login_as(db, "worker", grids=(WEST,))) as c:
        body = post(c, report(1100, 250)).json()
    assert body["assignment"]["method"] == "unassigned"


def test_near_boundary_names_the_other_grid(client, grids):
    body = post(client, report(480, 50, accuracy_m=50)).json()  # 20 m from the east grid
    assert body["grid"]["code"] == WEST
    near = body["assignment"]["near_boundary"]
    assert near["code"] == EAST and near["distance_m"] == pytest.approx(20, abs=1.0)
    calm = post(client, report(250, 50, accuracy_m=50)).json()
    assert calm["assignment"]["near_boundary"] is None


def test_near_edge_of_exclusive_grid_names_the_grid_beneath(client, grids):
    body = post(client, report(210, 250, accuracy_m=30)).json()  # 10 m inside the school
    assert body["grid"]["code"] == SCHOOL
    assert body["assignment"]["near_boundary"]["code"] == WEST


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_phone_coordinates_are_converted_to_wgs84(client, grids, crs):
    lon, lat = point_m(750, 250)  # middle of the east grid
    glon, glat = wgs84_to_gcj02(lon, lat)
    sent = (glon, glat) if crs == "gcj02" else gcj02_to_bd09(glon, glat)
    body = post(
        client,
        {
            "lon": float(sent[0]),
            "lat": float(sent[1]),
            "crs": crs,
            "theme": "gas",
            "category": "gas_leak",
        },
    ).json()
    assert body["lon"] == pytest.approx(lon, abs=1e-7) and body["lat"] == pytest.approx(
        lat, abs=1e-7
    )
    assert body["grid"]["code"] == EAST
    assert body["source"] == {"crs": crs, "lon": float(sent[0]), "lat": float(sent[1])}


def test_known_gcj02_pair_from_an_independent_implementation(client, grids):
    lon, lat = point_m(750, 250)
    ref = prcoords.wgs_gcj(prcoords.Coords(lat, lon))  # the oracle, not our formula
    body = post(
        client,
        {"lon": ref.lon, "lat": ref.lat, "crs": "gcj02", "theme": "gas", "category": "gas_leak"},
    ).json()
    assert body["lon"] == pytest.approx(lon, abs=1e-7) and body["lat"] == pytest.approx(
        lat, abs=1e-7
    )


# --- bad input ------------------------------------------------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"lon": "east"}, "lon: Input should be a valid number"),
        ({"lat": float("nan")}, "lat: Input should be a finite number"),
        ({"lon": float("inf")}, "lon: Input should be a finite number"),
        ({"lat": 125.03, "lon": 46.6}, "look swapped"),
        ({"lat": 95.0}, "lat must be within -90..90"),
        ({"theme": "weather"}, "unknown theme 'weather'"),
        ({"category": "gas_smell"}, "unknown category 'gas_smell' for theme 'gas'"),
        ({"id": "not-a-uuid"}, "id: Input should be a valid UUID"),
        ({"reported_at": FUTURE}, "is in the future"),
        ({"description": "x" * 2001}, "description: String should have at most 2000 characters"),
        ({"description": "bad\x00byte"}, "must not contain NUL"),
        ({"crs": "utm"}, "crs: Input should be"),
        ({"severity": 9}, "severity: Input should be less than or equal to 4"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_nothing_stored(client, grids, change, needle):
    body = {**report(), **change}
    r = client.post(
        "/api/v1/reports", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert count(grids) == 0


@pytest.mark.parametrize(
    ("lonlat", "needle"),
    [
        ((0.0, 0.0), "no GPS fix"),
        ((116.39, 39.9), "outside the service area"),  # Beijing
    ],
)
def test_points_far_from_the_service_area_are_refused(client, grids, lonlat, needle):
    r = post(client, {"lon": lonlat[0], "lat": lonlat[1], "theme": "gas", "category": "gas_leak"})
    assert r.status_code == 422 and needle in r.json()["detail"]
    assert count(grids) == 0


# --- settings -------------------------------------------------------------------------------


def test_naive_reported_at_is_read_in_the_zone_of_the_apps_settings(
    db, grids, settings, monkeypatch
):
    # The process-wide settings say New York; the app was handed UTC: the app's settings win.
    monkeypatch.setenv("RISKGRID_REPORTS__NAIVE_TIMEZONE", "America/New_York")
    get_settings.cache_clear()
    try:
        reports = settings.reports.model_copy(update={"naive_timezone": "UTC"})
        app = create_app(settings.model_copy(update={"reports": reports}), engine=db)
        naive = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None, microsecond=0)
        with logged_in(app, login_as(db, "admin")) as c:
            one = post(c, report(reported_at=naive.isoformat())).json()
            batch = c.post(
                "/api/v1/reports:batch",
                json={"reports": [report(260, 60, reported_at=naive.isoformat())]},
            ).json()
    finally:
        get_settings.cache_clear()
    expected = naive.isoformat() + "Z"
    assert one["reported_at"] == expected
    assert batch["results"][0]["report"]["reported_at"] == expected


# --- idempotency ----------------------------------------------------------------------------


def test_same_client_id_twice_stores_once(client, grids):
    rid = str(uuid.uuid4())
    first = post(client, report(id=rid))
    again = post(client, report(id=rid))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() and first.json()["id"] == rid
    other = post(client, report(id=rid, severity=4))
    assert other.status_code == 409 and "different report" in other.json()["detail"]
    assert count(grids) == 1


def test_idempotency_key_header_replays_and_conflicts(client, grids):
    h = {"Idempotency-Key": "phone-7:report-42"}
    first = post(client, report(), headers=h)
    again = post(client, report(), headers=h)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert post(client, report(x=300), headers=h).status_code == 409
    assert count(grids) == 1


def test_batch_answers_per_item_and_replays_store_nothing(client, grids):
    items = [
        report(id=str(uuid.uuid4())),
        {**report(), "lat": "x"},
        report(id=str(uuid.uuid4()), x=750),
    ]
    r = client.post("/api/v1/reports:batch", json={"reports": items})
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == [201, 422, 201]
    assert r.json()["created"] == 2 and "lat" in r.json()["results"][1]["detail"]
    again = client.post("/api/v1/reports:batch", json={"reports": items}).json()
    assert [x["status"] for x in again["results"]] == [200, 422, 200]
    assert count(grids) == 2


def test_batch_without_ids_uses_the_key_per_item(client, grids):
    items = [report(), report(x=750)]
    h = {"Idempotency-Key": "sync-2024-08-22"}
    client.post("/api/v1/reports:batch", json={"reports": items}, headers=h)
    again = client.post("/api/v1/reports:batch", json={"reports": items}, headers=h).json()
    assert again["replayed"] == 2 and count(grids) == 2


def test_batch_over_the_limit_is_refused(client, grids):
    r = client.post("/api/v1/reports:batch", json={"reports": [report()] * 1001})
    assert r.status_code == 422 and "at most 1000" in r.json()["detail"]
    assert count(grids) == 0


# --- closed loop ----------------------------------------------------------------------------


# What a move needs when a test does not say (a reason; an `after` photo to resolve).
NEEDS = {"rejected": {"reason": "不予立案"}, "returned": {"reason": "非本部门职责"}}


def move(client, rid, to, **kw):
    if to == "resolved":
        after_photo(client.app.state.engine, rid)
    body = {"to": to, **NEEDS.get(to, {}), **kw}
    return client.post(f"/api/v1/reports/{rid}/transitions", json=body)


def test_full_loop_is_kept_in_history(client, grids):
    rid = post(client, report()).json()["id"]
    for to, extra in [
        ("accepted", {}),
        ("dispatched", {}),
        ("in_progress", {}),
        ("resolved", {"level": "street"}),
        ("verified", {"note": "复核通过"}),
    ]:
        r = move(client, rid, to, **extra)
        assert r.status_code == 200 and r.json()["status"] == to
    body = client.get(f"/api/v1/reports/{rid}").json()
    assert body["resolution_level"] == "street" and body["due_at"] is None
    steps = [(h["kind"], h["from_status"], h["to_status"]) for h in body["history"]]
    assert steps == [
        ("reported", None, "reported"),
        ("transition", "reported", "accepted"),
        ("transition", "accepted", "dispatched"),
        ("transition", "dispatched", "in_progress"),
        ("transition", "in_progress", "resolved"),
        ("transition", "resolved", "verified"),
    ]
    assert all(h["at"] for h in body["history"]) and body["history"][-1]["note"] == "复核通过"


@pytest.mark.parametrize(
    ("path", "to", "status"),
    [
        ([], "resolved", 409),
        ([], "verified", 409),
        ([], "dispatched", 409),
        (["rejected"], "accepted", 409),
        (["accepted", "dispatched", "in_progress"], "verified", 409),
    ],
)
def test_illegal_moves_answer_409(client, grids, path, to, status):
    rid = post(client, report()).json()["id"]
    for step in path:
        assert move(client, rid, step).status_code == 200
    r = move(client, rid, to, level="grid")
    assert r.status_code == status and "allowed next" in r.json()["detail"]


def test_resolving_needs_a_level(client, grids):
    rid = post(client, report()).json()["id"]
    move(client, rid, "accepted")
    move(client, rid, "dispatched")
    move(client, rid, "in_progress")
    r = move(client, rid, "resolved")
    assert r.status_code == 422 and "needs level" in r.json()["detail"]
    assert client.get(f"/api/v1/reports/{rid}").json()["status"] == "in_progress"


def test_unknown_report_is_404(client, grids):
    assert move(client, uuid.uuid4(), "dispatched").status_code == 404
    assert client.get(f"/api/v1/reports/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/v1/reports/not-a-uuid").status_code == 422


def test_deadlines_follow_the_category_and_settings(db, settings, grids):
    rules = settings.reports.model_copy(update={"time_limits": {"gas_leak": {"reported": "0.25h"}}})
    app = create_app(settings.model_copy(update={"reports": rules}), engine=db)
    with logged_in(app, login_as(db, "worker", grids=(WEST,))) as c:
        body = post(c, report()).json()
    due = datetime.fromisoformat(body["due_at"]) - datetime.fromisoformat(body["status_changed_at"])
    assert due == timedelta(minutes=15)


def test_overdue_reports_are_listed_and_counted(client, grids):
    late = post(client, report()).json()["id"]
    post(client, report(x=750, category="unsafe_appliance"))
    with grids.begin() as conn:
        conn.execute(
            text("UPDATE reports SET due_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": late},
        )
    listed = client.get("/api/v1/reports", params={"overdue": "true"}).json()
    assert [f["id"] for f in listed["features"]] == [late]
    assert listed["features"][0]["properties"]["overdue"] is True
    stats = client.get("/api/v1/stats").json()
    assert stats["overdue"] == 1
    assert stats["overdue_by_grid"] == {WEST: 1} and stats["overdue_by_department"] == {
        "燃气公司": 1
    }


# --- duplicates and reassignment ------------------------------------------------------------


def test_possible_duplicate_within_30_m_and_72_h(client, grids):
    first = post(client, report(250, 50)).json()["id"]
    near = post(client, report(260, 55)).json()
    assert near["possible_duplicate_of"] == first
    assert post(client, report(250, 100)).json()["possible_duplicate_of"] is None  # 50 m away
    other = post(client, report(250, 52, category="unsafe_appliance")).json()
    assert other["possible_duplicate_of"] is None
    old = (datetime.now(UTC) - timedelta(hours=100)).isoformat()
    assert post(client, report(251, 50, reported_at=old)).json()["possible_duplicate_of"] is None


def test_rejected_report_is_not_a_duplicate_target(client, grids):
    first = post(client, report()).json()["id"]
    move(client, first, "rejected")
    assert post(client, report()).json()["possible_duplicate_of"] is None


def test_manual_reassignment_is_recorded(client, grids):
    rid = post(client, report()).json()["id"]
    as_dispatcher = {"Authorization": f"Bearer {login_as(grids, 'dispatcher', 'xietiao')}"}
    r = client.patch(
        f"/api/v1/reports/{rid}", json={"grid": EAST, "note": "核实"}, headers=as_dispatcher
    )
    assert r.status_code == 200
    body = r.json()
    assert body["grid"]["code"] == EAST and body["assignment"]["method"] == "manual"
    last = body["history"][-1]
    assert (last["kind"], last["from_grid"], last["to_grid"], last["actor"]) == (
        "reassigned",
        WEST,
        EAST,
        "xietiao",
    )
    bad = client.patch(f"/api/v1/reports/{rid}", json={"grid": "999"}, headers=as_dispatcher)
    assert bad.status_code == 422 and "no grid" in bad.json()["detail"]


def test_new_boundary_version_reassigns_open_reports(client, grids, tmp_path):
    moving = post(client, report(450, 250)).json()["id"]  # west grid, 50 m from the edge
    closed = post(client, report(460, 250)).json()["id"]
    for step, extra in [
        ("accepted", {}),
        ("dispatched", {}),
        ("in_progress", {}),
        ("resolved", {"level": "grid"}),
        ("verified", {}),
    ]:
        assert move(client, closed, step, **extra).status_code == 200
    rows = layout()
    rows[0]["geometry"] = square_m(0, 0, 400)  # the west grid shrinks …
    rows[1]["geometry"] = square_m(400, 0, 600)  # … and the east grid takes the strip
    out = import_file(
        grids, write(grid_frame(rows), tmp_path / "v2.geojson"), ImportOptions(), ImportSettings()
    )
    assert out.applied.reassigned == 1
    body = client.get(f"/api/v1/reports/{moving}").json()
    assert body["grid"]["code"] == EAST
    last = body["history"][-1]
    assert (last["kind"], last["from_grid"], last["to_grid"]) == ("reassigned", WEST, EAST)
    assert last["note"] == f"boundary version {out.applied.version}"
    assert client.get(f"/api/v1/reports/{closed}").json()["grid"]["code"] == WEST


# --- queries and export ---------------------------------------------------------------------


def test_filters_and_cursor_paging(client, grids):
    ids = {post(client, report(100 + 10 * i, 50 + 40 * i)).json()["id"] for i in range(7)}
    post(client, report(750, 250, theme="flood", category="waterlogging"))
    seen, cursor = [], None
    while True:
        params = {"theme": "gas", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/reports", params=params).json()
        seen += [f["id"] for f in page["features"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert len(seen) == 7 and set(seen) == ids
    assert client.get("/api/v1/reports", params={"grid": EAST}).json()["numberReturned"] == 1
    lon, lat = point_m(700, 200)
    lon2, lat2 = point_m(800, 300)
    bbox = f"{lon},{lat},{lon2},{lat2}"
    assert client.get("/api/v1/reports", params={"bbox": bbox}).json()["numberReturned"] == 1


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (
            {"since": "2024-09-01T00:00:00Z", "until": "2024-08-01T00:00:00Z"},
            "since must be before",
        ),
        ({"cursor": "garbage"}, "cursor is not valid"),
        ({"theme": "weather"}, "unknown theme"),
        ({"status": "lost"}, "status"),
        ({"since": "2024-09-01T00:00:00"}, "time zone"),
    ],
)
def test_bad_query_parameters_answer_422(client, grids, params, needle):
    r = client.get("/api/v1/reports", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_csv_export_holds_every_matching_row(client, grids):
    for i in range(5):
        post(client, report(100 + 50 * i, 50, description=f"第{i}处, 含逗号"))
    r = client.get("/api/v1/reports", params={"format": "csv", "theme": "gas"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 5 and {r["grid_code"] for r in rows} == {WEST}
    assert sorted(r["description"] for r in rows)[0] == "第0处, 含逗号"


def test_csv_export_keeps_text_that_would_run_as_a_formula_inert(client, grids):
    # A spreadsheet runs a cell starting with = + - @ (OWASP's CSV injection).
    for text_ in ('=HYPERLINK("http://evil","看")', "-2+3", "@SUM(1)", "a=b"):
        post(client, report(100, 50, description=text_))
    r = client.get("/api/v1/reports", params={"format": "csv"})
    rows = csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))
    assert sorted(x["description"] for x in rows) == [
        "'-2+3",
        '\'=HYPERLINK("http://evil","看")',
        "'@SUM(1)",
        "a=b",
    ]


def test_stats_count_resolution_at_street_level_or_below(client, grids):
    ids = [post(client, report(100 + 60 * i, 50)).json()["id"] for i in range(4)]
    for rid, level in zip(ids[:3], ["grid", "street", "district"], strict=True):
        for step, extra in [
            ("accepted", {}),
            ("dispatched", {}),
            ("in_progress", {}),
            ("resolved", {"level": level}),
        ]:
            assert move(client, rid, step, **extra).status_code == 200
    s = client.get("/api/v1/stats").json()
    assert s["total"] == 4 and s["resolved"] == 3
    assert s["resolution_rate"] == 0.75
    assert s["share_resolved_at_street_or_below"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["by_status"] == {"resolved": 3, "reported": 1}


def test_campaign_is_linked_by_theme_and_date_or_named(client, grids):
    assert post(client, report()).json()["campaign"] == "CA11"  # gas, during 创安十一号
    flood = post(client, report(theme="flood", category="waterlogging")).json()
    assert flood["campaign"] is None
    assert post(client, report(campaign="CA04")).json()["campaign"] == "CA04"
    r = post(client, report(campaign="CA99"))
    assert r.status_code == 422 and "unknown campaign" in r.json()["detail"]


def test_themes_list_the_taxonomy_with_labels(client):
    body = client.get("/api/v1/themes").json()
    themes = {t["code"]: t for t in body["themes"]}
    assert {"flood", "road_safety", "fire", "gas", "elderly", "dispute", "stability"} <= set(themes)
    cats = {c["code"]: c for c in themes["road_safety"]["categories"]}
    assert {"road_damage", "missing_sign", "blackspot"} <= set(cats)
    assert cats["road_damage"]["zh"] == "道路破损" and cats["road_damage"]["department"]
    assert body["statuses"]["resolved"] == ["verified", "in_progress"]
