"""Personal data kept to the minimum: household scopes, small counts withheld, area polygons
checked, sensitive reports masked in lists, exports and heat layers, reads audited."""

from __future__ import annotations

import csv
import io
import re
import uuid

import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry
from sqlalchemy import text

from geo.analytics import patterns
from geo.cache import versions
from geo.identity.principal import Principal
from geo.identity.scope import report_scope
from geo.reports.queries import ReportFilter
from geo.vocabulary import Role
from tests.factories import grid_frame, login_as, point_m, square_m, write

K = 5
A, B = "230602", "230603"  # two districts of three by three grids of 500 m, 500 m apart
SCHOOL = "230602001001901"  # an exclusive grid inside A's middle grid


def code(district: str, n: int) -> str:
    return f"{district}001001{n:03d}"


@pytest.fixture
def town(db, tmp_path, settings):
    from boundaries.importer import ImportOptions, import_file
    from geo.risk import households
    from geo.settings import ImportSettings

    rows = []
    for district, x0 in ((A, 0.0), (B, 2000.0)):
        for j in range(3):
            for i in range(3):
                rows.append(
                    {
                        "code": code(district, j * 3 + i + 1),
                        "name": f"网格{district}-{j * 3 + i + 1}",
                        "kind": "comprehensive",
                        "community_code": f"{district}001001",
                        "district_code": district,
                        "geometry": square_m(x0 + i * 500, j * 500, 500),
                    }
                )
    rows.append(
        {
            "code": SCHOOL,
            "name": "实验小学",
            "kind": "exclusive",
            "community_code": f"{A}001001",
            "district_code": A,
            "geometry": square_m(600, 600, 100),
        }
    )
    import_file(
        db, write(grid_frame(rows), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    homes = (
        # Grid A1: eight households, one of them living alone.
        [_home(f"A1-{n}", 50 + 50 * n, 100, members=3, over_60=n % 2) for n in range(7)]
        + [_home("A1-alone", 60, 400, members=1, over_60=1, alone=True)]
        # Grid A2: two, one an old woman living alone who needs help to move.
        + [_home("A2-frail", 700, 200, members=1, over_60=1, alone=True, mobility=True)]
        + [_home("A2-family", 900, 400, members=4)]
        # The school inside A5 (exclusive), and grid B1 with six households.
        + [_home("school-keeper", 650, 650, members=2)]
        + [_home(f"B1-{n}", 2050 + 60 * n, 100, members=2) for n in range(6)]
    )
    with db.begin() as conn:
        households.load(conn, pd.DataFrame(homes), settings.reports.snap_tolerance_m)
    return db


def _home(name, x, y, members=1, over_60=0, alone=False, mobility=False) -> dict:
    lon, lat = point_m(x, y)
    return {
        "id": str(uuid.uuid4()),
        "code": name,
        "head_name": f"户主{name}",
        "phone": f"139{abs(hash(name)) % 10**8:08d}",
        "address": f"{name}号",
        "members": members,
        "over_60": over_60,
        "oldest_age": 82 if over_60 else 40,
        "living_alone": alone,
        "mobility_needs": mobility,
        "contact_worker": "网格员",
        "lon": lon,
        "lat": lat,
    }


def bearer(db, role, **scope) -> dict:
    return {"Authorization": f"Bearer {login_as(db, role, **scope)}"}


def square_around(x, y, half_m) -> dict:
    return shapely.geometry.mapping(square_m(x - half_m, y - half_m, 2 * half_m))


def audit_rows(db, action):
    with db.connect() as conn:
        return conn.execute(
            text(
                "SELECT actor, role, object_type, object_id, people FROM audit_log "
                "WHERE action = :a ORDER BY id"
            ),
            {"a": action},
        ).all()


# Households: who sees which, and the counts per grid.


def test_household_listing_follows_each_roles_scope(client, town):
    def codes(headers, **params):
        r = client.get("/api/v1/households", params={"limit": 100, **params}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["households"])
        return {h["code"] for h in r.json()["households"]}

    everyone = codes({})
    assert len(everyone) == 17
    assert codes(bearer(town, "coordinator")) == everyone
    in_a = codes(bearer(town, "coordinator", districts=(A,)))
    assert len(in_a) == 11 and not any(c.startswith("B1") for c in in_a)
    worker = bearer(town, "worker", grids=(code(A, 1),))
    assert codes(worker) == {f"A1-{n}" for n in range(7)} | {"A1-alone"}
    assert codes(worker, grid=code(A, 2)) == set()  # another grid's households: none
    # A worker of the middle grid sees the school's households: it lies in their grid.
    assert codes(bearer(town, "worker", grids=(code(A, 5),))) == {"school-keeper"}
    for role, scope in (
        ("planner", {}),
        ("dispatcher", {}),
        ("department", {"department": "民政局"}),
    ):
        r = client.get("/api/v1/households", headers=bearer(town, role, **scope))
        assert r.status_code == 403
        assert "coordinators" in r.json()["detail"] and "by-grid" in r.json()["detail"]


def test_counts_per_grid_are_scoped_or_withheld_below_k(client, town):
    def rows(headers):
        r = client.get("/api/v1/households/by-grid", headers=headers)
        assert r.status_code == 200
        return {row["code"]: row for row in r.json()}, r.headers.get("cache-control")

    planner, cache = rows(bearer(town, "planner"))
    assert cache is None  # nothing personal left in it
    assert set(planner) == {code(A, 1), code(A, 2), code(A, 5), code(B, 1)}
    small = planner[code(A, 2)]
    assert small["suppressed"] is True
    assert all(small[c] is None for c in ("households", "residents", "mobility_needs"))
    big = planner[code(A, 1)]
    assert big["households"] == 8 and big["residents"] == 22 and big["suppressed"] is True
    assert big["living_alone"] is None and big["mobility_needs"] == 0  # one alone: withheld
    assert planner[code(B, 1)] == {**planner[code(B, 1)], "households": 6, "suppressed": False}
    coordinator, cache = rows(bearer(town, "coordinator", districts=(A,)))
    assert cache == "no-store"
    assert set(coordinator) == {code(A, 1), code(A, 2), code(A, 5)}
    exact = coordinator[code(A, 2)]
    assert exact["households"] == 2 and exact["living_alone"] == 1 and not exact["suppressed"]
    assert coordinator[code(A, 5)]["households"] == 1  # the school's, beneath it
    worker, _ = rows(bearer(town, "worker", grids=(code(A, 1),)))
    assert list(worker) == [code(A, 1)] and worker[code(A, 1)]["living_alone"] == 1


# Area queries: small counts, relocation lists, the polygon itself.


def test_a_six_metre_square_around_a_frail_neighbour_tells_a_planner_nothing(client, town):
    body = {"geometry": square_around(700, 200, 3)}
    r = client.post("/api/v1/risk/query", json=body, headers=bearer(town, "planner"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got["households"].values()) == {None, True}  # every count null, suppressed
    [grid] = got["grids"]
    assert grid["code"] == code(A, 2) and grid["households"] is None and grid["suppressed"]
    assert got["relocation"] is None and not re.search(r"\d", got["relocation_withheld"])
    assert "户主" not in r.text and "A2-frail" not in r.text
    assert "cache-control" not in r.headers and not audit_rows(town, "personal_data.read")
    # The coordinator of the district sees her, and the read is audited.
    r = client.post("/api/v1/risk/query", json=body, headers=bearer(town, "coordinator"))
    got = r.json()
    assert got["households"]["households"] == 1 and got["households"]["mobility_needs"] == 1
    assert [h["code"] for h in got["relocation"]] == ["A2-frail"]
    assert r.headers["cache-control"] == "no-store"


def test_withheld_counts_cannot_be_told_from_the_total(client, town):
    # Grid A1 whole (eight households) and a sliver of A2 around one house: the total minus
    # A1 would give her away, so one more count is withheld.
    poly = shapely.union_all([square_m(0, 0, 500), square_m(697, 197, 6)])
    body = {"geometry": shapely.geometry.mapping(poly)}
    got = client.post("/api/v1/risk/query", json=body, headers=bearer(town, "planner")).json()
    total = got["households"]
    assert total["households"] == 9
    for field in ("households", "residents", "over_60", "living_alone", "vulnerable_residents"):
        if total[field] is None:
            continue
        shown = sum(g[field] for g in got["grids"] if g[field] is not None)
        assert total[field] - shown == 0 or total[field] - shown >= K, (field, got)
    exact = client.post("/api/v1/risk/query", json=body).json()  # an admin: all exact
    assert [g["households"] for g in exact["grids"]] == [8, 1]


def test_district_coordinator_lists_only_their_districts_households(client, town):
    # Across both districts: A1, A2, A4, A5 (with the school) and B1 whole.
    poly = shapely.union_all([square_m(0, 0, 1000), square_m(2000, 0, 500)])
    body = {"geometry": shapely.geometry.mapping(poly)}
    r = client.post(
        "/api/v1/risk/query", json=body, headers=bearer(town, "coordinator", districts=(A,))
    )
    got = r.json()
    listed = {h["code"] for h in got["relocation"]}
    assert len(listed) == 11 and not any(c.startswith("B1") for c in listed)
    assert got["relocation_total"] == 11 and any("not listed" in n for n in got["notes"])
    rows = {g["code"]: g for g in got["grids"]}
    assert rows[code(A, 2)]["households"] == 2 and not rows[code(A, 2)]["suppressed"]
    assert rows[code(B, 1)]["households"] == 6  # at least k: shown, not listed
    everyone = client.post("/api/v1/risk/query", json=body).json()
    assert everyone["relocation_total"] == 17


def test_antimeridian_and_globe_wrapping_polygons_are_refused(client, town):
    across = {
        "type": "Polygon",
        "coordinates": [[[-180, 40], [180, 40], [180, 50], [-180, 50], [-180, 40]]],
    }
    r = client.post("/api/v1/risk/query", json={"geometry": across})
    assert r.status_code == 422 and "antimeridian" in r.json()["detail"]
    # Edges of 120° each stay under 180° but go around the globe: refused by its size.
    band = [[-180, 46], [-60, 46], [60, 46], [180, 46], [180, 47], [60, 47], [-60, 47], [-180, 47]]
    r = client.post(
        "/api/v1/risk/query",
        json={"geometry": {"type": "Polygon", "coordinates": [[*band, band[0]]]}},
    )
    assert r.status_code == 422 and "km²" in r.json()["detail"]
    out = {"type": "Polygon", "coordinates": [[[125, 46], [181, 46], [181, 47], [125, 46]]]}
    r = client.post("/api/v1/risk/query", json={"geometry": out})
    assert r.status_code == 422 and "within ±180" in r.json()["detail"]


def test_polygon_must_lie_within_the_service_area(client, town):
    far = {"geometry": square_around(25_000, 500, 400)}  # 21 km east of the last grid
    r = client.post("/api/v1/risk/query", json=far)
    assert r.status_code == 422 and "outside the service area" in r.json()["detail"]
    assert "km from the nearest grid" in r.json()["detail"]
    reaching = {"geometry": shapely.geometry.mapping(square_m(3000, 0, 12_000))}  # to 15.5 km
    r = client.post("/api/v1/risk/query", json=reaching)
    assert r.status_code == 422 and "outside the service area" in r.json()["detail"]
    near = {"geometry": square_around(3500 + 5000, 500, 400)}  # 5 km out: like a report
    r = client.post("/api/v1/risk/query", json=near)
    assert r.status_code == 200 and r.json()["grids"] == []


# Sensitive reports: masked in lists, CSV and heat layers for roles without the right.


def _grid_point(db, grid):
    with db.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM "
                    "(SELECT ST_PointOnSurface(geom) AS p FROM grids WHERE code = :c) s"
                ),
                {"c": grid},
            ).one()
        )


@pytest.fixture
def elderly(client, town):
    """Five elderly-theme reports near one corner of grid A1 (their grid point is far away),
    sent by an admin with a description."""
    exact = [point_m(20 + 5 * n, 20) for n in range(5)]
    for lon, lat in exact:
        r = client.post(
            "/api/v1/reports",
            json={
                "lon": lon,
                "lat": lat,
                "theme": "elderly",
                "category": "living_alone",
                "description": "王奶奶独居,行动不便",
            },
        )
        assert r.status_code == 201, r.text
    return exact


def test_sensitive_reports_are_masked_in_lists_and_csv_for_a_planner(client, town, elderly):
    grid_pt = _grid_point(town, code(A, 1))
    planner = bearer(town, "planner")
    page = client.get("/api/v1/reports", params={"theme": "elderly"}, headers=planner).json()
    assert len(page["features"]) == 5
    for ft in page["features"]:
        assert ft["geometry"]["coordinates"] == pytest.approx(list(grid_pt), abs=1e-7)
        p = ft["properties"]
        assert p["masked"] and p["description"] is None and p["reporter"] is None
        assert p["distance_m"] is None
    r = client.get("/api/v1/reports", params={"theme": "elderly", "format": "csv"}, headers=planner)
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 5 and "王奶奶" not in r.content.decode("utf-8-sig")
    for row in rows:
        assert (float(row["lon"]), float(row["lat"])) == pytest.approx(grid_pt, abs=1e-6)
        assert row["reporter"] == "" and row["description"] == "" and row["masked"] == "t"
    # A box around the exact corner finds nothing; one around the grid's point finds them.
    lon, lat = elderly[0]
    box = f"{lon - 0.0002},{lat - 0.0002},{lon + 0.0002},{lat + 0.0002}"
    hit = client.get("/api/v1/reports", params={"theme": "elderly", "bbox": box}, headers=planner)
    assert hit.json()["features"] == []
    gx, gy = grid_pt
    box = f"{gx - 0.0002},{gy - 0.0002},{gx + 0.0002},{gy + 0.0002}"
    hit = client.get("/api/v1/reports", params={"theme": "elderly", "bbox": box}, headers=planner)
    assert len(hit.json()["features"]) == 5
    # A dispatcher handles them: exact points and the description.
    page = client.get(
        "/api/v1/reports", params={"theme": "elderly"}, headers=bearer(town, "dispatcher")
    ).json()
    points = sorted(tuple(ft["geometry"]["coordinates"]) for ft in page["features"])
    np.testing.assert_allclose(points, sorted(elderly), atol=1e-7)
    assert {ft["properties"]["description"] for ft in page["features"]} == {"王奶奶独居,行动不便"}
    assert not any(ft["properties"]["masked"] for ft in page["features"])


def test_heat_and_cluster_layers_show_a_planner_the_grid_point_only(client, town, elderly):
    grid_pt = shapely.Point(_grid_point(town, code(A, 1)))
    corner = shapely.MultiPoint(elderly)
    params = {"theme": "elderly", "size_m": 50}

    def hexagons(headers):
        r = client.get("/api/v1/hotspots/hexbins", params=params, headers=headers)
        return [shapely.geometry.shape(f["geometry"]) for f in r.json()["features"]]

    # The dispatcher asks first: the planner's answer must not come from that cached one.
    exact = hexagons(bearer(town, "dispatcher"))
    assert any(h.intersects(corner) for h in exact)
    masked = hexagons(bearer(town, "planner"))
    assert len(masked) == 1 and masked[0].contains(grid_pt)
    assert not masked[0].intersects(corner)
    clusters = client.get(
        "/api/v1/hotspots/clusters",
        params={"theme": "elderly", "eps_m": 30, "min_points": 3},
        headers=bearer(town, "planner"),
    ).json()
    [outline] = [shapely.geometry.shape(f["geometry"]) for f in clusters["features"]]
    assert outline.contains(grid_pt) and not outline.intersects(corner)
    # The map's heat layers (centres, and per period) from the same shown points.
    who = Principal(1, "p", Role.PLANNER)
    f = ReportFilter(theme="elderly", scope=report_scope(who, ("elderly",)))
    with town.connect() as conn:
        v = versions(conn)
        [(lat, lon, n)] = patterns.hex_centres(conn, f, v, 50.0, 10)
        since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
        [[(plat, plon, pn)]] = patterns.hexbins_by_period(conn, f, v, 50.0, since, 7200, 1, 10)
    assert n == pn == 5
    for la, lo in ((lat, lon), (plat, plon)):
        assert shapely.Point(lo, la).distance(grid_pt) < 0.001  # within a 50 m hexagon
        assert shapely.Point(lo, la).distance(corner) > 0.002


def test_hazards_about_people_are_counted_where_shown_and_withheld_below_k(client, town):
    sent = [(2100, "elderly", "living_alone"), (2150, "elderly", "living_alone")]
    for x, theme, category in [*sent, (2200, "flood", "waterlogging")]:
        lon, lat = point_m(x, 30)
        r = client.post(
            "/api/v1/reports", json={"lon": lon, "lat": lat, "theme": theme, "category": category}
        )
        assert r.status_code == 201, r.text
    planner, dispatcher = bearer(town, "planner"), bearer(town, "dispatcher")

    def hazards(geometry, headers):
        r = client.post("/api/v1/risk/query", json={"geometry": geometry}, headers=headers)
        got = r.json()["hazards"]
        return got, {c["theme"]: c for c in got["by_category"]}

    grid_b1 = shapely.geometry.mapping(square_m(2000, 0, 500))
    got, by_theme = hazards(grid_b1, planner)
    assert by_theme["flood"]["count"] == 1 and not by_theme["flood"]["suppressed"]
    assert by_theme["elderly"]["count"] is None and by_theme["elderly"]["suppressed"]
    assert got["total"] is None and got["suppressed"]  # 3 - 1 would tell the elderly ones
    assert got["by_category"][-1]["theme"] == "elderly"  # its place tells nothing either
    got, by_theme = hazards(grid_b1, dispatcher)
    assert by_theme["elderly"]["count"] == 2 and got["total"] == 3
    # Around the houses themselves: a planner finds nothing of them, the dispatcher both.
    _, by_theme = hazards(square_around(2125, 30, 40), planner)
    assert "elderly" not in by_theme
    _, by_theme = hazards(square_around(2125, 30, 40), dispatcher)
    assert by_theme["elderly"]["count"] == 2


# The audit of every read and export, and answers kept out of caches.


def test_reads_and_exports_of_personal_data_are_audited_with_the_people_shown(client, town):
    coordinator = bearer(town, "coordinator", username="coord-a", districts=(A,))
    r = client.get(
        "/api/v1/households", params={"grid": code(A, 1), "limit": 3}, headers=coordinator
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    shown = sum(h["members"] for h in r.json()["households"])
    body = {"geometry": shapely.geometry.mapping(square_m(500, 0, 500)), "limit": 1}
    r = client.post("/api/v1/risk/query", json=body, headers=coordinator)
    assert r.json()["relocation_total"] == 2 and len(r.json()["relocation"]) == 1
    first = r.json()["relocation"][0]["members"]
    exports = {}
    for fmt in ("csv", "xlsx"):
        r = client.post(
            "/api/v1/risk/query", params={"format": fmt}, json=body, headers=coordinator
        )
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        exports[fmt] = r
    listing, area = audit_rows(town, "personal_data.read")
    assert tuple(listing) == ("coord-a", "coordinator", "households", f"grid={code(A, 1)}", shown)
    assert tuple(area[:3]) == ("coord-a", "coordinator", "area_query") and area.people == first
    assert area.object_id.startswith("polygon bbox=125.")
    exported = audit_rows(town, "personal_data.export")
    assert [row[4] for row in exported] == [5, 5]  # the frail neighbour and a family of four
    frame = pd.read_csv(io.BytesIO(exports["csv"].content), encoding="utf-8-sig")
    assert frame["members"].sum() == 5
    sheets = pd.read_excel(io.BytesIO(exports["xlsx"].content), sheet_name=None, engine="openpyxl")
    assert sheets["relocation"]["members"].sum() == 5
    # Counts only: nothing to audit, nothing to keep out of caches.
    planner = bearer(town, "planner")
    for fmt in ("json", "xlsx"):
        r = client.post("/api/v1/risk/query", params={"format": fmt}, json=body, headers=planner)
        assert r.status_code == 200 and "cache-control" not in r.headers
    assert len(audit_rows(town, "personal_data.read")) == 2
    assert len(audit_rows(town, "personal_data.export")) == 2


def test_ranking_withholds_small_household_counts_and_their_score(demo_client, demo_engine):
    planner = {"Authorization": f"Bearer {login_as(demo_engine, 'planner', 'rank-planner')}"}
    admin = demo_client.get("/api/v1/risk/grids").json()["features"]
    seen = demo_client.get("/api/v1/risk/grids", headers=planner).json()["features"]
    exact = {f["id"]: f["properties"] for f in admin}
    shown = {f["id"]: f["properties"] for f in seen}
    few = [c for c, p in exact.items() if 0 < p["vulnerable_residents"] < 5]
    assert few, "the demo has grids with a few vulnerable residents"
    for code in few:
        p = shown[code]
        assert p["vulnerable_residents"] is None and p["suppressed"] is True
        # The part is that of k residents, not of the true few: it gives nothing back.
        assert p["vulnerable_part"] == pytest.approx(5 / (5 + 50), abs=1e-6)
    many = next(c for c, p in exact.items() if p["vulnerable_residents"] >= 5)
    assert shown[many]["vulnerable_residents"] == exact[many]["vulnerable_residents"]
    assert [f["properties"]["rank"] for f in seen] == list(range(1, len(seen) + 1))
    scores = [f["properties"]["score"] for f in seen]
    assert scores == sorted(scores, reverse=True)
