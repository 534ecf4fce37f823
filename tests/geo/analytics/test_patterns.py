"""Hexagon bins by arithmetic agree with PostGIS's own hexagon grid, on the Daqing demo."""

import pytest
from sqlalchemy import text

from geo.analytics import patterns
from geo.cache import versions
from geo.reports.queries import ReportFilter


@pytest.mark.parametrize("size_m", [250.0, 1500.0])
def test_cells_are_the_hexagon_grid_cells_of_postgis(demo_engine, size_m):
    sql = f"""
        WITH pts AS (SELECT r.id, ST_Transform(r.geom, 32651) AS g FROM reports r),
        {patterns._cells("p.id,")},
        gridded AS (
          SELECT DISTINCT ON (p.id) p.id, h.i, h.j
          FROM pts p CROSS JOIN LATERAL ST_HexagonGrid(:size, p.g) h
          WHERE ST_Intersects(h.geom, p.g) ORDER BY p.id, h.i, h.j
        )
        SELECT count(*) AS n, count(*) FILTER (WHERE c.i <> g.i OR c.j <> g.j) AS differ
        FROM cell c JOIN gridded g ON g.id = c.id
    """  # noqa: S608 - fixed SQL from geo.clusters
    with demo_engine.connect() as conn:
        row = conn.execute(text(sql), {"size": size_m}).one()
    assert row.n > 20_000 and row.differ == 0


def test_hex_centres_are_hexagon_centroids_busiest_first(demo_engine):
    with demo_engine.connect() as conn:
        top = patterns.hex_centres(conn, ReportFilter(theme="flood"), versions(conn), 1500.0, 50)
        bins = patterns.hexbins(conn, ReportFilter(theme="flood"), versions(conn), 1500.0)
        check = conn.execute(
            text(
                "SELECT ST_Y(c), ST_X(c) FROM (SELECT ST_Transform(ST_Centroid(ST_SetSRID("
                "ST_Hexagon(1500, :i, :j), 32651)), 4326) AS c) s"
            ),
            {
                "i": bins["features"][0]["properties"]["i"],
                "j": bins["features"][0]["properties"]["j"],
            },
        ).one()
    counts = [n for _, _, n in top]
    assert len(top) == 50 and counts == sorted(counts, reverse=True)
    assert counts[0] == bins["features"][0]["properties"]["count"]
    assert top[0][:2] == pytest.approx(tuple(check), abs=1e-5)


def test_dbscan_on_a_sample_keeps_the_dense_areas_and_scales_counts(demo_engine):
    f = ReportFilter(theme="flood")
    with demo_engine.connect() as conn:
        full = patterns.dbscan(conn, f, versions(conn), 400.0, 15)
        part = patterns.dbscan(conn, f, versions(conn), 400.0, 15, sample_to=full["points"] // 3)
    rate = part["method"]["sample_rate"]
    assert 0.2 < rate < 0.45 and full["method"]["sample_rate"] == 1.0
    assert part["points"] == full["points"]
    # The biggest clusters are found in both, with counts of the same size.
    assert part["features"] and full["features"]
    big, est = full["features"][0]["properties"], part["features"][0]["properties"]
    assert set(big["grids"]) & set(est["grids"])
    assert 0.7 < est["count"] / big["count"] < 1.3


def test_masked_reports_are_binned_at_their_grids_points_and_none_is_lost(demo_engine):
    import shapely
    import shapely.geometry

    from geo.identity.principal import Principal
    from geo.identity.scope import report_scope
    from geo.settings import AuthSettings
    from geo.vocabulary import Role

    planner = report_scope(Principal(1, "p", Role.PLANNER), AuthSettings().sensitive_themes)
    exact_f, masked_f = ReportFilter(theme="elderly"), ReportFilter(theme="elderly", scope=planner)
    with demo_engine.connect() as conn:
        v = versions(conn)
        exact = patterns.hexbins(conn, exact_f, v, 100.0)
        masked = patterns.hexbins(conn, masked_f, v, 100.0)
        stand_ins = shapely.MultiPoint(
            [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(g.geom) AS p "
                        "FROM grids g WHERE g.code IN (SELECT grid_code FROM reports "
                        "WHERE theme = 'elderly')) s"
                    )
                )
            ]
        )
        unplaced = conn.execute(
            text("SELECT count(*) FROM reports WHERE theme = 'elderly' AND grid_code IS NULL")
        ).scalar_one()
    # The one elderly report outside every grid and district is still counted (nearest grid).
    assert unplaced >= 1 and masked["total"] == exact["total"] == 2900
    hexagons = [shapely.geometry.shape(f["geometry"]) for f in masked["features"]]
    assert len(hexagons) < len(exact["features"])
    inside = sum(h.intersects(stand_ins) for h in hexagons)
    assert inside >= len(hexagons) - unplaced  # each at a grid's point, but the nearest-grid one
