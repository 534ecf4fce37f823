"""Household files: checked row by row, converted to WGS-84, assigned to grids, re-importable."""

from __future__ import annotations

import json

from sqlalchemy import text
from typer.testing import CliRunner

from boundaries.importer import ImportOptions, import_file
from geo.coords import wgs84_to_gcj02
from geo.settings import ImportSettings
from riskgrid.cli import app
from tests.factories import grid_frame, point_m, tiled, write

runner = CliRunner()


def test_import_checks_rows_converts_and_assigns(cli_env, db, tmp_path):
    import_file(
        db, write(grid_frame(tiled(2)), tmp_path / "g.geojson"), ImportOptions(), ImportSettings()
    )
    a, b = point_m(250, 250), point_m(750, 750)
    glon, glat = wgs84_to_gcj02(*b)
    rows = [
        "户编号,经度,纬度,坐标系,人数,60岁以上,最大年龄,独居,行动不便,户主,电话",
        f"H1,{a[0]:.7f},{a[1]:.7f},wgs84,1,1,82,是,否,王秀英,13800000001",
        f"H2,{float(glon):.7f},{float(glat):.7f},gcj02,3,2,75,0,1,李建国,13800000002",
        f"H3,{a[0]:.7f},95,wgs84,2,0,,0,0,,",  # latitude out of range
        f"H4,{a[0]:.7f},{a[1]:.7f},wgs84,2,3,70,0,0,,",  # more over 60 than members
        f"H5,{a[0]:.7f},{a[1]:.7f},wgs84,2,1,70,是,0,,",  # alone with two members
        f"H6,{a[0]:.7f},{a[1]:.7f},wgs84,2,1,70,maybe,0,,",
        f"H1,{a[0]:.7f},{a[1]:.7f},wgs84,1,1,82,是,否,,",  # duplicate code
    ]
    path = tmp_path / "hh.csv"
    path.write_text("\n".join(rows) + "\n", encoding="gb18030")
    r = runner.invoke(app, ["households", "import", str(path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["received"], out["stored"], out["refused"]) == (1, 1, 6)
    assert {e["row"]: e["error"].split()[0] for e in out["errors"]} == {
        2: "code", 4: "lat", 5: "over_60", 6: "living_alone", 7: "living_alone", 8: "code",
    }  # fmt: skip
    with db.connect() as conn:
        got = conn.execute(
            text("SELECT code, grid_code, ST_X(geom), ST_Y(geom), living_alone FROM households")
        ).all()
    assert [(g.code, g.grid_code, g.living_alone) for g in got] == [
        ("H2", "230602001001004", False)
    ]
    # GCJ-02 came back to the WGS-84 position within centimetres.
    assert abs(got[0][2] - b[0]) < 1e-6 and abs(got[0][3] - b[1]) < 1e-6
    again = runner.invoke(app, ["households", "import", str(path), "--json"])
    assert json.loads(again.stdout)["stored"] == 0


def test_missing_columns_are_named(cli_env, tmp_path):
    path = tmp_path / "hh.csv"
    path.write_text("code,lon\nH1,125\n", encoding="utf-8")
    r = runner.invoke(app, ["households", "import", str(path)])
    assert r.exit_code == 1 and "lacks columns ['lat', 'members']" in r.output
