"""Reading each file format, CRS handling, column names and shapefile encodings."""

import json
import zipfile

import pytest
import shapely

from boundaries.reader import read_file, resolve_columns
from geo.errors import InvalidInput
from tests.factories import grid_frame, tiled, write

FORMATS = [".geojson", ".gpkg", ".shp", ".fgb"]


@pytest.mark.parametrize("suffix", FORMATS)
def test_each_format_reads_back_the_same_grids(tmp_path, suffix):
    frame = grid_frame(tiled(2))
    path = write(frame, tmp_path / f"grids{suffix}")
    got = read_file(path)
    assert sorted(got.frame["code"]) == sorted(frame["code"])
    a = got.frame.set_index("code").geometry
    for code, geom in zip(frame["code"], frame.geometry, strict=True):
        assert shapely.equals_exact(shapely.normalize(a[code]), shapely.normalize(geom), 1e-9)


def test_zipped_shapefile_reads(tmp_path):
    write(grid_frame(tiled(2)), tmp_path / "g.shp")
    zpath = tmp_path / "grids.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in tmp_path.glob("g.*"):
            zf.write(p, f"网格/{p.name}")
    got = read_file(zpath)
    assert len(got.frame) == 4 and got.frame.crs.to_epsg() == 4326


def test_epsg3857_file_is_reprojected_to_4326(tmp_path):
    frame = grid_frame(tiled(2))
    path = write(frame.to_crs(3857), tmp_path / "mercator.gpkg")
    got = read_file(path)
    assert got.frame.crs.to_epsg() == 4326
    assert "3857" in got.source_crs
    c = got.frame.set_index("code").geometry[frame["code"][0]].centroid
    e = frame.geometry[0].centroid
    assert abs(c.x - e.x) < 1e-7 and abs(c.y - e.y) < 1e-7


def test_cgcs2000_file_is_accepted(tmp_path):
    path = write(grid_frame(tiled(1)).set_crs(4490, allow_override=True), tmp_path / "c.gpkg")
    got = read_file(path)
    assert "4490" in got.source_crs and got.frame.crs.to_epsg() == 4326


def test_file_without_crs_is_refused_unless_crs_given(tmp_path):
    path = write(grid_frame(tiled(1)), tmp_path / "nocrs.shp")
    (tmp_path / "nocrs.prj").unlink()
    with pytest.raises(InvalidInput, match=r"no coordinate reference system.*--crs"):
        read_file(path)
    got = read_file(path, crs="EPSG:4490")
    assert len(got.frame) == 1 and "4490" in got.source_crs


def test_gbk_shapefile_without_cpg_keeps_chinese_names(tmp_path):
    rows = [
        {"网格编码": r["code"], "网格名称": r["name"], "geometry": r["geometry"]} for r in tiled(2)
    ]
    path = write(grid_frame(rows), tmp_path / "gbk.shp", encoding="GBK")
    (tmp_path / "gbk.cpg").unlink(missing_ok=True)
    got = read_file(path)
    assert got.encoding == "gb18030"
    assert got.columns == ["网格编码", "网格名称"]
    assert list(got.frame["网格名称"]) == ["测试网格1", "测试网格2", "测试网格3", "测试网格4"]
    assert resolve_columns(got.columns, "grids", {}) == {"code": "网格编码", "name": "网格名称"}


def test_explicit_encoding_wins_over_detection(tmp_path):
    rows = [{"WGBM": r["code"], "WGMC": r["name"], "geometry": r["geometry"]} for r in tiled(1)]
    path = write(grid_frame(rows), tmp_path / "g.shp", encoding="GBK")
    (tmp_path / "g.cpg").unlink(missing_ok=True)
    got = read_file(path, encoding="gbk")
    assert got.encoding == "gbk" and got.frame["WGMC"][0] == "测试网格1"


def test_zip_with_several_shapefiles_needs_a_layer(tmp_path):
    write(grid_frame(tiled(1)), tmp_path / "a.shp")
    write(grid_frame(tiled(2)), tmp_path / "b.shp")
    zpath = tmp_path / "two.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in [*tmp_path.glob("a.*"), *tmp_path.glob("b.*")]:
            zf.write(p, p.name)
    with pytest.raises(InvalidInput, match=r"several shapefiles.*--file-layer"):
        read_file(zpath)
    assert len(read_file(zpath, layer="b").frame) == 4


def test_missing_column_error_lists_the_columns_found():
    with pytest.raises(InvalidInput) as exc:
        resolve_columns(["FID_1", "WGMC", "AREA"], "grids", {})
    msg = str(exc.value)
    assert "code" in msg and "'FID_1'" in msg and "--code-field" in msg


def test_given_field_that_does_not_exist_is_refused():
    with pytest.raises(InvalidInput, match=r"'BIANMA'.*columns found"):
        resolve_columns(["WGBM", "WGMC"], "grids", {"code": "BIANMA"})


def test_unsupported_and_missing_files_are_refused(tmp_path):
    (tmp_path / "grids.csv").write_text("a,b\n")
    with pytest.raises(InvalidInput, match="unsupported file type"):
        read_file(tmp_path / "grids.csv")
    with pytest.raises(InvalidInput, match="no such file"):
        read_file(tmp_path / "absent.geojson")
    (tmp_path / "bad.geojson").write_text(json.dumps({"type": "Nonsense"}))
    with pytest.raises(InvalidInput, match="could not read"):
        read_file(tmp_path / "bad.geojson")


def test_shapefile_laundered_column_names_are_recognised(tmp_path):
    path = write(grid_frame(tiled(1)), tmp_path / "g.shp")
    got = read_file(path)
    assert "community_" in got.columns
    assert resolve_columns(got.columns, "grids", {})["community_code"] == "community_"
