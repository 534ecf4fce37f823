"""The `riskgrid` command line against the test database."""

import json
import subprocess
import sys

from typer.testing import CliRunner

from geo.db import migrate
from riskgrid.cli import app
from tests.factories import grid_frame, point_m, tiled, write

runner = CliRunner()


def test_import_prints_the_version_and_reimport_says_unchanged(cli_env, tmp_path):
    path = write(grid_frame(tiled(2)), tmp_path / "g.gpkg")
    first = runner.invoke(app, ["boundaries", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "4 added" in first.output and "boundary version" in first.output
    again = runner.invoke(app, ["boundaries", "import", str(path)])
    assert again.exit_code == 0 and "unchanged (4 feature(s)" in again.output


def test_check_json_lists_findings_and_strict_exits_2(cli_env, tmp_path):
    rows = tiled(2)
    rows[1]["code"] = rows[0]["code"]
    path = write(grid_frame(rows), tmp_path / "dup.geojson")
    r = runner.invoke(app, ["boundaries", "check", str(path), "--json"])
    assert r.exit_code == 0
    report = json.loads(r.stdout)["report"]
    assert report["counts"] == {"duplicate_code": 1} and report["importable"] == 2
    strict = runner.invoke(app, ["boundaries", "import", str(path), "--strict"])
    assert strict.exit_code == 2 and "nothing imported" in strict.output


def test_missing_crs_error_names_the_flag(cli_env, tmp_path):
    path = write(grid_frame(tiled(1)), tmp_path / "nocrs.shp")
    (tmp_path / "nocrs.prj").unlink()
    r = runner.invoke(app, ["boundaries", "import", str(path)])
    assert r.exit_code == 1 and "--crs" in r.output
    ok = runner.invoke(app, ["boundaries", "import", str(path), "--crs", "EPSG:4490"])
    assert ok.exit_code == 0 and "1 added" in ok.output


def test_code_field_option_and_mapping_file(cli_env, tmp_path):
    rows = [{"GID": r["code"], "GNAME": r["name"], "geometry": r["geometry"]} for r in tiled(1)]
    path = write(grid_frame(rows), tmp_path / "g.geojson")
    missing = runner.invoke(app, ["boundaries", "import", str(path)])
    assert missing.exit_code == 1 and "columns found: ['GID', 'GNAME']" in missing.output
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"code": "GID"}))
    r = runner.invoke(
        app, ["boundaries", "import", str(path), "--mapping", str(mapping), "--name-field", "GNAME"]
    )
    assert r.exit_code == 0 and "1 added" in r.output


def test_db_status_reports_schema_at_head(cli_env):
    r = runner.invoke(app, ["db", "status"])
    head = migrate.head()
    assert r.exit_code == 0 and f"schema: {head} (head {head})" in r.output


def test_help_lists_every_group_and_loads_no_heavy_library():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for name in ("db", "boundaries", "reports", "layers", "households", "tokens", "demo", "serve"):
        assert f" {name} " in r.output
    # `riskgrid --help` stays fast: the commands import these only when they run.
    probe = (
        "import sys, riskgrid.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'numpy', 'sqlalchemy', 'geopandas', 'boundaries', 'api', 'web'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _grids(tmp_path):
    path = write(grid_frame(tiled(2)), tmp_path / "g.gpkg")
    assert runner.invoke(app, ["boundaries", "import", str(path)]).exit_code == 0


def test_reports_import_prints_counts_and_refused_rows(cli_env, tmp_path):
    _grids(tmp_path)
    (lon, lat), (lon2, lat2) = point_m(250, 250), point_m(750, 750)
    path = tmp_path / "r.csv"
    path.write_text(
        "lon,lat,theme,category,reported_at\n"
        f"{lon},{lat},gas,gas_leak,2024-08-23 10:00\n"
        f"{lon2},{lat2},gas,gas_leak,2024-08-23 11:00\n"
        f"{lon},{lat},volcano,lava,2024-08-23 12:00\n",
        encoding="utf-8",
    )
    r = runner.invoke(app, ["reports", "import", str(path)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("r.csv: 3 row(s): 2 stored, 0 already stored, 1 refused (")
    assert lines[0].endswith(" s); assignment: {'inside': 2}")
    assert lines[1:] == ["  row 4: unknown theme 'volcano'"]
    again = runner.invoke(app, ["reports", "import", str(path), "--json"])
    body = json.loads(again.stdout)
    assert list(body) == [
        "rows", "inserted", "already_stored", "refused", "by_method", "seconds", "errors",
    ]  # fmt: skip
    assert (body["inserted"], body["already_stored"], body["refused"]) == (0, 2, 1)


def test_reports_import_exits_2_when_every_row_is_refused(cli_env, tmp_path):
    _grids(tmp_path)
    path = tmp_path / "bad.csv"
    path.write_text("lon,lat,theme,category\n125,95,gas,gas_leak\n", encoding="utf-8")
    r = runner.invoke(app, ["reports", "import", str(path)])
    assert r.exit_code == 2 and "  row 2: lat must be within -90..90 (got 95.0)" in r.stdout


def test_households_import_prints_counts_and_exits_2_when_all_refused(cli_env, tmp_path):
    _grids(tmp_path)
    lon, lat = point_m(250, 250)
    path = tmp_path / "hh.csv"
    path.write_text(f"code,lon,lat,members\nH1,{lon},{lat},2\nH2,{lon},{lat},0\n")
    r = runner.invoke(app, ["households", "import", str(path)])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "hh.csv: 1 household(s) read, 1 added or changed, 0 outside every grid, 1 refused",
        "  row 3: members must be a whole number 1-50",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"code,lon,lat,members\nH2,{lon},{lat},0\n")
    refused = runner.invoke(app, ["households", "import", str(bad), "--json"])
    assert refused.exit_code == 2
    assert json.loads(refused.stdout) == {
        "received": 0, "stored": 0, "unassigned": 0, "refused": 1,
        "errors": [{"row": 2, "error": "members must be a whole number 1-50"}],
    }  # fmt: skip
