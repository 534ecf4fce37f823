"""Risk layer files: levels from words or return periods, repairs, refusals, re-imports."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text
from typer.testing import CliRunner

from boundaries.risk_import import LayerOptions, import_layer, level_from, read_layer
from geo.errors import ImportRefused, InvalidInput
from riskgrid.cli import app
from tests.factories import point_m, square_m, write


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def zones() -> gpd.GeoDataFrame:
    return frame(
        [
            {
                "编码": "Z1",
                "名称": "沿河高风险区",
                "风险等级": "高",
                "geometry": square_m(0, 0, 1000),
            },
            {
                "编码": "Z2",
                "名称": "中风险区",
                "风险等级": "中",
                "geometry": square_m(1000, 0, 1000),
            },
            {
                "编码": "Z3",
                "名称": "低风险区",
                "风险等级": "低",
                "geometry": square_m(2000, 0, 1000),
            },
        ]
    )


def stored(db) -> dict:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT code, level, name FROM risk_layers ORDER BY code")).all()
    return {r.code: (r.level, r.name) for r in rows}


def test_levels_from_words_and_parts_rebuilt(db, tmp_path):
    path = write(zones(), tmp_path / "zones.geojson")
    out = import_layer(db, path, LayerOptions(kind="flood_zone"))
    assert out.stored.added == 3 and not out.findings
    assert stored(db) == {"Z1": (3, "沿河高风险区"), "Z2": (2, "中风险区"), "Z3": (1, "低风险区")}
    with db.connect() as conn:
        areas = dict(
            conn.execute(
                text(
                    "SELECT min_level, sum(ST_Area(geom::geography)) FROM risk_parts "
                    "WHERE kind = 'flood_zone' GROUP BY 1"
                )
            ).all()
        )
    # Parts at or above each level: 3 km², 2 km², 1 km² (UTM squares, geodesic areas).
    assert [round(areas[lv] / 1e6, 2) for lv in (1, 2, 3)] == [3.0, 2.0, 1.0]
    again = import_layer(db, path, LayerOptions(kind="flood_zone"))
    assert (again.stored.added, again.stored.changed, again.stored.unchanged) == (0, 0, 3)


def test_import_is_audited_with_its_counts_and_a_refused_one_is_not(db, tmp_path):
    from geo.identity.audit import AuditFilter, entries
    from geo.identity.principal import Principal
    from geo.vocabulary import Role

    path = write(zones(), tmp_path / "zones.geojson")
    with pytest.raises(ImportRefused):
        import_layer(
            db, path, LayerOptions(kind="low_lying", strict=True, fields={"level": "名称"})
        )
    import_layer(db, path, LayerOptions(kind="flood_zone"), who=Principal(5, "zhao", Role.ADMIN))
    with db.connect() as conn:
        (entry,) = entries(conn, AuditFilter(action="import.*"), 10, None)["entries"]
    assert (entry["action"], entry["actor"], entry["object_id"]) == (
        "import.layers", "zhao", "zones.geojson",
    )  # fmt: skip
    assert entry["changes"] == {
        "kind": "flood_zone", "added": 3, "changed": 0, "unchanged": 0, "removed": 0,
        "refused": 0, "findings": 0,
    }  # fmt: skip


def test_prune_removes_what_the_file_lacks(db, tmp_path):
    import_layer(db, write(zones(), tmp_path / "a.geojson"), LayerOptions(kind="flood_zone"))
    two = write(zones().iloc[:2], tmp_path / "b.geojson")
    kept = import_layer(db, two, LayerOptions(kind="flood_zone"))
    assert kept.stored.removed == 0 and set(stored(db)) == {"Z1", "Z2", "Z3"}
    pruned = import_layer(db, two, LayerOptions(kind="flood_zone", prune=True))
    assert pruned.stored.removed == 1 and set(stored(db)) == {"Z1", "Z2"}


@pytest.mark.parametrize(
    ("value", "period", "level"),
    [("3", None, 3), ("高风险", None, 3), ("medium", None, 2), (1.0, None, 1), (None, 5, 3),
     (None, "20", 2), (None, 100, 1), ("extreme", None, None), (None, "often", None),
     (None, -5, None)],
)  # fmt: skip
def test_level_words_and_return_periods(value, period, level):
    assert level_from(value, period) == level


def test_return_period_column_and_whole_file_level(db, tmp_path):
    rows = zones().drop(columns=["风险等级"])
    rows["重现期"] = [10, 20, 100]
    out = import_layer(db, write(rows, tmp_path / "rp.geojson"), LayerOptions(kind="flood_zone"))
    assert out.stored.added == 3 and [v[0] for v in stored(db).values()] == [3, 2, 1]
    plain = zones().drop(columns=["风险等级"]).assign(编码=["L1", "L2", "L3"])
    path = write(plain, tmp_path / "plain.geojson")
    _, refused = read_layer(path, LayerOptions(kind="low_lying"))
    assert {f.check for f in refused.findings} == {"unknown_level"} and refused.importable == 0
    out = import_layer(db, path, LayerOptions(kind="low_lying", level=2))
    assert out.stored.added == 3
    assert {k: v[0] for k, v in stored(db).items() if k.startswith("L")} == {
        "L1": 2,
        "L2": 2,
        "L3": 2,
    }


def test_invalid_polygons_are_repaired_and_lines_refused_for_zones(db, tmp_path):
    x0, y0 = point_m(0, 0)
    x1, y1 = point_m(1000, 1000)
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    rows = frame(
        [
            {"code": "B", "name": "蝴蝶", "level": 2, "geometry": bowtie},
            {
                "code": "L",
                "name": "线",
                "level": 2,
                "geometry": shapely.LineString([(x0, y0), (x1, y1)]),
            },
        ]
    )
    path = write(rows, tmp_path / "bad.geojson")
    out = import_layer(db, path, LayerOptions(kind="flood_zone"))
    checks = {(f.check, f.codes[0]) for f in out.findings}
    assert checks == {("repaired_geometry", "B"), ("invalid_geometry", "L")}
    assert set(stored(db)) == {"B"}
    with pytest.raises(ImportRefused):
        import_layer(db, path, LayerOptions(kind="flood_zone", strict=True))


def test_rivers_may_be_lines_and_codes_are_derived(db, tmp_path):
    line = shapely.LineString([point_m(0, 0), point_m(5000, 800), point_m(9000, 300)])
    path = write(frame([{"name": "嫩江", "geometry": line}]), tmp_path / "river.geojson")
    first = import_layer(db, path, LayerOptions(kind="river"))
    again = import_layer(db, path, LayerOptions(kind="river"))
    (code,) = stored(db)
    assert code.startswith("g") and first.stored.added == 1 and again.stored.unchanged == 1
    with db.connect() as conn:
        km = conn.execute(
            text("SELECT ST_Length(geom::geography) / 1000 FROM risk_layers")
        ).scalar()
    assert km == pytest.approx(9.07, abs=0.05)


def test_unknown_kind_and_level_are_refused(tmp_path):
    path = write(zones(), tmp_path / "zones.geojson")
    with pytest.raises(InvalidInput, match="--kind"):
        read_layer(path, LayerOptions(kind="lake"))
    with pytest.raises(InvalidInput, match="--level"):
        read_layer(path, LayerOptions(kind="flood_zone", level=7))


runner = CliRunner()


def test_cli_imports_layers_and_manages_tokens(cli_env, db, settings, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.factories import login_as

    path = write(zones(), tmp_path / "zones.gpkg")
    r = runner.invoke(app, ["layers", "import", str(path), "--kind", "flood_zone", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["import"]["added"] == 3
    listing = runner.invoke(app, ["layers", "list"])
    assert "flood_zone  level 3: 1 feature(s)" in listing.output
    bad = runner.invoke(app, ["layers", "import", str(path), "--kind", "lake"])
    assert bad.exit_code == 1 and "--kind" in bad.output

    login_as(db, "coordinator", username="wang")
    made = runner.invoke(app, ["tokens", "create", "--user", "wang", "--name", "防汛脚本"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("rg_") and "\n" not in token and "shown once" in made.stderr
    # No per-process cache: a revocation must show at once (the CLI runs in this process).
    fresh = settings.model_copy(
        update={"auth": settings.auth.model_copy(update={"token_cache_s": 0})}
    )
    with TestClient(create_app(fresh, engine=db)) as api:
        me = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["role"] == "coordinator"
        listed = runner.invoke(app, ["tokens", "list"])
        assert "wang" in listed.output and "防汛脚本" in listed.output and "active" in listed.output
        assert token not in listed.output
        (entry,) = json.loads(runner.invoke(app, ["tokens", "list", "--json"]).stdout)
        assert (entry["username"], entry["role"], entry["revoked_at"]) == (
            "wang",
            "coordinator",
            None,
        )
        assert token not in json.dumps(entry)
        revoked = runner.invoke(app, ["tokens", "revoke", str(entry["id"])])
        assert revoked.exit_code == 0 and f"token {entry['id']} revoked" in revoked.output
        assert "revoked" in runner.invoke(app, ["tokens", "list"]).output
        assert runner.invoke(app, ["tokens", "revoke", str(entry["id"])]).exit_code == 1
        gone = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert gone.status_code == 401
    nobody = runner.invoke(app, ["tokens", "create", "--user", "nobody", "--name", "x"])
    assert nobody.exit_code == 1 and "no active user 'nobody'" in nobody.output
    forever = runner.invoke(
        app, ["tokens", "create", "--user", "wang", "--name", "x", "--days", "0"]
    )
    assert forever.exit_code == 1 and "--days must be 1-3650" in forever.output
