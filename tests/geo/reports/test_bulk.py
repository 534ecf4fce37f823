"""Bulk report loading (`riskgrid reports import` and the demo) on real PostGIS."""

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from boundaries.importer import ImportOptions, import_file
from geo.coords import wgs84_to_gcj02
from geo.identity.scope import EVERYTHING
from geo.reports.bulk import load
from geo.reports.files import read_reports
from geo.reports.record import get
from geo.settings import ImportSettings, ReportSettings, get_settings
from riskgrid.cli import app
from tests.api.test_reports import EAST, SCHOOL, WEST, layout
from tests.factories import grid_frame, point_m, write

RULES = ReportSettings()


@pytest.fixture
def grids(db, tmp_path):
    import_file(
        db, write(grid_frame(layout()), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    return db


def _csv(tmp_path, rows, name="r.csv"):
    head = "id,lon,lat,crs,theme,category,reported_at,reporter,description"
    lines = [head] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(x, y, **kw):
    lon, lat = point_m(x, y)
    base = {
        "id": None,
        "lon": lon,
        "lat": lat,
        "crs": None,
        "theme": "gas",
        "category": "gas_leak",
        "reported_at": "2024-08-23 10:00",
        "reporter": "张三",
        "description": None,
    }
    base.update(kw)
    return list(base.values())


def _assignments(db):
    with db.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT reporter, assignment_method || ':' || COALESCE(grid_code, '-') "
                    "FROM reports"
                )
            ).all()
        )


def test_bulk_assignment_follows_the_single_intake_rules(grids, tmp_path):
    west = layout()[0]["geometry"].exterior.coords
    east = layout()[1]["geometry"].exterior.coords
    edge = next(c for c in west if c in east)
    rows = [
        _row(250, 50, reporter="inside"),
        _row(250, 250, reporter="school"),
        _row(1100, 250, reporter="snap"),
        _row(1600, 250, reporter="triage"),
        [None, edge[0], edge[1], None, "gas", "gas_leak", "2024-08-23 10:00", "edge", None],
    ]
    parsed = read_reports(_csv(tmp_path, rows), RULES, set())
    with grids.begin() as conn:
        result = load(conn, parsed.rows, RULES)
    assert result.inserted == 5 and not result.refused
    assert _assignments(grids) == {
        "inside": f"inside:{WEST}",
        "school": f"exclusive:{SCHOOL}",
        "snap": f"nearest:{EAST}",
        "triage": "unassigned:-",
        "edge": f"inside:{WEST}",
    }
    with grids.connect() as conn:
        d = conn.execute(text("SELECT assignment_distance_m FROM reports WHERE reporter='snap'"))
        assert d.scalar() == pytest.approx(100, abs=1.0)
        rid = conn.execute(text("SELECT id FROM reports WHERE reporter='snap'")).scalar()
        history = get(conn, rid, EVERYTHING)["history"]
    assert [h["kind"] for h in history] == ["reported"] and history[0]["to_grid"] == EAST


def test_bad_rows_are_listed_with_row_numbers_and_the_rest_loads(grids, tmp_path):
    rows = [
        _row(250, 50),
        _row(250, 60, theme="weather"),
        [None, 46.6, 125.03, None, "gas", "gas_leak", "", "x", None],
        _row(250, 70, reported_at="2099-01-01 00:00"),
        [None, 0, 0, None, "gas", "gas_leak", "", "zero", None],
        _row(250, 80, id="nope"),
        _row(250, 90, reported_at="yesterday"),
    ]
    parsed = read_reports(_csv(tmp_path, rows), RULES, set())
    with grids.begin() as conn:
        result = load(conn, parsed.rows, RULES)
    errors = dict(sorted(parsed.errors + result.refused))
    assert set(errors) == {3, 4, 5, 6, 7, 8}
    assert "not an ISO 8601 date-time" in errors[8]
    assert "unknown theme" in errors[3] and "swapped" in errors[4]
    assert "future" in errors[5] and "service area" in errors[6] and "UUID" in errors[7]
    assert result.inserted == 1


def test_reimport_stores_nothing_twice(grids, tmp_path):
    path = _csv(tmp_path, [_row(250, 50), _row(750, 50, reporter="李四")])
    for expected in (2, 0):
        parsed = read_reports(path, RULES, set())
        with grids.begin() as conn:
            assert load(conn, parsed.rows, RULES).inserted == expected
    with grids.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reports")).scalar() == 2


def test_gcj02_rows_are_converted(grids, tmp_path):
    lon, lat = point_m(750, 250)
    g = wgs84_to_gcj02(lon, lat)
    rows = [[None, float(g[0]), float(g[1]), "gcj02", "gas", "gas_leak", "", "g", None]]
    parsed = read_reports(_csv(tmp_path, rows), RULES, set())
    with grids.begin() as conn:
        load(conn, parsed.rows, RULES)
        got = conn.execute(text("SELECT ST_X(geom), ST_Y(geom), grid_code FROM reports")).one()
    assert got[0] == pytest.approx(lon, abs=1e-7) and got[2] == EAST


def test_geojson_file_and_cli_report(grids, settings, tmp_path, monkeypatch):
    lon, lat = point_m(250, 50)
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"theme": "fire", "category": "electrical", "reporter": "赵六"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"theme": "fire", "category": "volcano"},
            },
        ],
    }
    path = tmp_path / "r.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["reports", "import", str(path), "--json"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["inserted"] == 1 and body["errors"] == [
        {"row": 2, "error": "unknown category 'volcano' for theme 'fire'"}
    ]
