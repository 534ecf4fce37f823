"""repair_polygonal: the one repair behind boundary import, layer import and area queries."""

from __future__ import annotations

import shapely

from geo.geometry import repair_polygonal

BOW_TIE = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2), (0, 0)])


def test_valid_polygon_comes_back_as_it_is_with_no_reason():
    square = shapely.box(0, 0, 1, 1)
    repair = repair_polygonal(square)
    assert repair.reason is None and repair.valid is square
    assert repair.polygons is not None and repair.polygons.equals(square)
    assert repair.polygons.geom_type == "MultiPolygon"


def test_bow_tie_is_repaired_to_its_two_triangles_and_says_why():
    repair = repair_polygonal(BOW_TIE)
    assert repair.reason is not None and "Self-intersection" in repair.reason
    assert repair.polygons is not None and len(repair.polygons.geoms) == 2
    assert repair.polygons.area == 2.0


def test_lines_left_by_make_valid_are_dropped_from_the_polygons():
    # A square with a spike: make_valid gives the square and a line.
    spiky = shapely.Polygon([(0, 0), (1, 0), (1, 1), (1, 3), (1, 1), (0, 1), (0, 0)])
    repair = repair_polygonal(spiky)
    assert repair.reason is not None
    assert repair.valid.geom_type == "GeometryCollection"
    assert repair.polygons is not None and repair.polygons.equals(shapely.box(0, 0, 1, 1))


def test_a_shape_with_no_area_has_no_polygons():
    flat = shapely.Polygon([(0, 0), (1, 0), (2, 0), (0, 0)])
    repair = repair_polygonal(flat)
    assert repair.reason is not None and repair.polygons is None
    assert repair.valid.geom_type in ("LineString", "MultiLineString")
    assert repair_polygonal(shapely.LineString([(0, 0), (1, 1)])).polygons is None
