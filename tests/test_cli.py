"""The `riskgrid` command line against the test database."""

import json

from typer.testing import CliRunner

from geo.db import migrate
from riskgrid.cli import app
from tests.factories import grid_frame, tiled, write

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
