"""Validation findings and the all-or-nothing import, on real PostGIS."""

import json

import pytest
import shapely
from sqlalchemy import text

from boundaries.importer import ImportOptions, check_file, import_file
from geo.errors import ImportRefused
from geo.settings import ImportSettings
from tests.factories import grid_frame, square_m, tiled, write

TOL = ImportSettings()


def _count(engine, sql="SELECT count(*) FROM grids"):
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _checks(outcome):
    return sorted(f.check for f in outcome.report.findings)


def test_clean_file_imports_and_reimport_changes_nothing(db, tmp_path):
    path = write(grid_frame(tiled(3)), tmp_path / "g.geojson")
    first = import_file(db, path, ImportOptions(), TOL)
    assert first.report.clean and first.applied.added == 9 and first.applied.version
    again = import_file(db, path, ImportOptions(), TOL)
    assert again.applied.version is None and again.applied.unchanged == 9
    assert _count(db) == 9
    assert _count(db, "SELECT count(*) FROM boundary_versions") == 1
    area = _count(db, "SELECT round(min(area_m2)) FROM grids")
    assert 249_000 < area < 251_000  # 500 m squares, geodesic m²


def test_changed_file_records_a_new_boundary_version(db, tmp_path):
    rows = tiled(2)
    import_file(db, write(grid_frame(rows), tmp_path / "v1.geojson"), ImportOptions(), TOL)
    rows[0]["name"] = "改名网格"
    rows[1]["geometry"] = square_m(500, 0, 400)
    rows.append(
        {
            "code": "230602001001099",
            "name": "新网格",
            "kind": "comprehensive",
            "community_code": "230602001001",
            "geometry": square_m(2000, 0, 500),
        }
    )
    out = import_file(db, write(grid_frame(rows), tmp_path / "v2.geojson"), ImportOptions(), TOL)
    assert (out.applied.added, out.applied.changed, out.applied.unchanged) == (1, 2, 2)
    with db.connect() as conn:
        versions = dict(conn.execute(text("SELECT code, boundary_version FROM grids")).all())
    assert versions["230602001001001"] == out.applied.version
    assert versions["230602001001004"] != out.applied.version


def test_bow_tie_is_repaired_and_listed(db, tmp_path):
    rows = tiled(1)
    x0, y0, x1, y1 = rows[0]["geometry"].bounds
    rows[0]["geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    out = import_file(
        db, write(grid_frame(rows), tmp_path / "bowtie.geojson"), ImportOptions(), TOL
    )
    (finding,) = out.report.findings
    assert finding.check == "repaired_geometry" and "Self-intersection" in finding.message
    assert _count(db, "SELECT count(*) FROM grids WHERE ST_IsValid(geom)") == 1


def test_overlapping_grids_are_reported_with_area(db, tmp_path):
    rows = [
        *tiled(1),
        {
            "code": "230602001001002",
            "name": "重叠",
            "kind": "comprehensive",
            "community_code": "230602001001",
            "geometry": square_m(250, 0, 500),
        },
    ]
    out = check_file(db, write(grid_frame(rows), tmp_path / "o.geojson"), ImportOptions(), TOL)
    (f,) = out.report.findings
    assert f.check == "overlap" and f.codes == ["230602001001001", "230602001001002"]
    assert 124_000 < f.area_m2 < 126_000 and f.where.startswith("POLYGON")


def test_edge_sharing_grids_are_not_overlaps(db, tmp_path):
    out = check_file(db, write(grid_frame(tiled(3)), tmp_path / "t.geojson"), ImportOptions(), TOL)
    assert out.report.clean


def test_gap_inside_a_community_is_reported(db, tmp_path):
    rows = [r for r in tiled(3) if r["code"] != "230602001001005"]  # the middle one
    out = check_file(db, write(grid_frame(rows), tmp_path / "gap.geojson"), ImportOptions(), TOL)
    (f,) = out.report.findings
    assert f.check == "gap" and f.codes == ["230602001001"]
    assert 249_000 < f.area_m2 < 251_000


def test_duplicate_codes_are_left_out_and_listed(db, tmp_path):
    rows = tiled(2)
    rows[1]["code"] = rows[0]["code"]
    out = import_file(db, write(grid_frame(rows), tmp_path / "dup.geojson"), ImportOptions(), TOL)
    assert _checks(out) == ["duplicate_code"]
    assert out.report.importable == 2 and _count(db) == 2


def test_empty_and_degenerate_shapes_are_left_out(db, tmp_path):
    rows = tiled(2)
    p = rows[1]["geometry"].exterior.coords[0]
    rows[1]["geometry"] = shapely.Polygon([p, p, p, p])
    rows[2]["geometry"] = None
    path = write(grid_frame(rows), tmp_path / "degen.gpkg")
    out = import_file(db, path, ImportOptions(), TOL)
    assert set(_checks(out)) <= {"degenerate_geometry", "empty_geometry", "invalid_geometry"}
    assert len(out.report.findings) == 2 and _count(db) == 2


def test_grid_outside_its_district_is_reported(db, tmp_path):
    district = shapely.MultiPolygon([square_m(0, 0, 1000)])
    areas = grid_frame(
        [{"code": "230602", "name": "萨尔图区", "level": "district", "geometry": district}]
    )
    import_file(db, write(areas, tmp_path / "areas.geojson"), ImportOptions(layer="areas"), TOL)
    rows = [{"code": "230602001001001", "name": "越界", "geometry": square_m(800, 0, 500)}]
    out = check_file(db, write(grid_frame(rows), tmp_path / "g.geojson"), ImportOptions(), TOL)
    (f,) = out.report.findings
    assert f.check == "outside_district" and 149_000 < f.area_m2 < 151_000


def test_strict_import_refuses_and_rolls_back_everything(db, tmp_path):
    import_file(db, write(grid_frame(tiled(2)), tmp_path / "ok.geojson"), ImportOptions(), TOL)
    before = _count(
        db, "SELECT string_agg(code || name || ST_AsText(geom), ',' ORDER BY code) FROM grids"
    )
    rows = tiled(2)
    rows[0]["name"] = "改名"
    rows[1]["code"] = rows[2]["code"]
    path = write(grid_frame(rows), tmp_path / "bad.geojson")
    with pytest.raises(ImportRefused) as exc:
        import_file(db, path, ImportOptions(strict=True), TOL)
    assert [f.check for f in exc.value.report.findings] == ["duplicate_code"]
    after = _count(
        db, "SELECT string_agg(code || name || ST_AsText(geom), ',' ORDER BY code) FROM grids"
    )
    assert after == before
    assert _count(db, "SELECT count(*) FROM boundary_versions") == 1


def test_failure_midway_leaves_stored_grids_untouched(db, tmp_path):
    import_file(db, write(grid_frame(tiled(2)), tmp_path / "ok.geojson"), ImportOptions(), TOL)
    rows = tiled(2)
    rows[0]["population"] = 2**40  # passes validation, fails the integer column in PostgreSQL
    for r in rows[1:]:
        r["population"] = 1
    with pytest.raises(Exception, match="out of range"):
        import_file(db, write(grid_frame(rows), tmp_path / "x.geojson"), ImportOptions(), TOL)
    assert _count(db, "SELECT count(*) FROM grids WHERE population IS NULL") == 4
    assert _count(db, "SELECT count(*) FROM boundary_versions") == 1


def test_field_options_and_kind_values_in_chinese(db, tmp_path):
    rows = [
        {"WGBM": r["code"], "WGMC": r["name"], "LX": "综合网格", "geometry": r["geometry"]}
        for r in tiled(2)
    ]
    rows[0]["LX"] = "专属网格"
    path = write(grid_frame(rows), tmp_path / "wg.geojson")
    opts = ImportOptions(fields={"code": "WGBM", "name": "WGMC", "kind": "LX"})
    out = import_file(db, path, opts, TOL)
    assert out.applied.added == 4
    assert _count(db, "SELECT count(*) FROM grids WHERE kind = 'exclusive'") == 1


def test_unknown_kind_is_an_error_finding(db, tmp_path):
    rows = tiled(1)
    rows[0]["kind"] = "whatever"
    out = check_file(db, write(grid_frame(rows), tmp_path / "k.geojson"), ImportOptions(), TOL)
    assert _checks(out) == ["unknown_kind"] and out.report.importable == 0


def test_report_serialises_to_json(db, tmp_path):
    rows = tiled(2)
    rows[1]["code"] = rows[0]["code"]
    out = check_file(db, write(grid_frame(rows), tmp_path / "d.geojson"), ImportOptions(), TOL)
    data = json.loads(json.dumps(out.as_dict(), ensure_ascii=False))
    assert data["report"]["counts"] == {"duplicate_code": 1}
    assert data["report"]["features"] == 4 and data["report"]["importable"] == 2


def test_prune_removes_grids_absent_from_the_file_as_a_new_version(db, tmp_path):
    rows = tiled(2)
    import_file(db, write(grid_frame(rows), tmp_path / "v1.geojson"), ImportOptions(), TOL)
    path = write(grid_frame(rows[:3]), tmp_path / "v2.geojson")
    kept = import_file(db, path, ImportOptions(), TOL)
    assert kept.applied.absent == 1 and kept.applied.version is None and _count(db) == 4
    pruned = import_file(db, path, ImportOptions(prune=True), TOL)
    assert pruned.applied.removed == 1 and pruned.applied.version is not None
    assert _count(db) == 3


def _audit(engine, action):
    from geo.identity.audit import AuditFilter, entries

    with engine.connect() as conn:
        return entries(conn, AuditFilter(action=action), 10, None)["entries"]


def test_import_is_audited_with_its_counts_and_a_refused_one_is_not(db, tmp_path):
    from geo.identity.principal import Principal
    from geo.vocabulary import Role

    rows = tiled(2)
    rows[1]["code"] = rows[0]["code"]
    path = write(grid_frame(rows), tmp_path / "dup.geojson")
    with pytest.raises(ImportRefused):
        import_file(db, path, ImportOptions(strict=True), TOL)
    assert _audit(db, "import.*") == []
    wang = Principal(7, "wang", Role.ADMIN)
    import_file(db, path, ImportOptions(), TOL, who=wang)
    import_file(db, path, ImportOptions(), TOL)  # the command line: the default principal
    again, first = _audit(db, "import.boundaries")
    assert (first["actor"], first["role"], first["object_type"], first["object_id"]) == (
        "wang", "admin", "file", "dup.geojson",
    )  # fmt: skip
    assert first["changes"] == {
        "layer": "grids", "version": 1, "added": 2, "changed": 0, "unchanged": 0,
        "removed": 0, "refused": 2, "findings": 1, "reports_reassigned": 0,
    }  # fmt: skip
    assert again["actor"] == "system" and again["changes"]["version"] is None
    assert again["changes"]["unchanged"] == 2
