"""Small geometry helpers shared by import, validation and the demo generator."""

from __future__ import annotations

from collections.abc import Iterator

import shapely


def _polygons(geom: shapely.Geometry) -> Iterator[shapely.Polygon]:
    for part in shapely.get_parts(geom):
        if part.geom_type == "Polygon" and not part.is_empty:
            yield part
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            yield from _polygons(part)


def polygonal(geom: shapely.Geometry | None) -> shapely.MultiPolygon | None:
    """Return the polygonal part of `geom` as a MultiPolygon, or None when it has none.

    `make_valid` and `intersection` can return lines and points beside the polygons; a grid
    keeps only what has area.
    """
    if geom is None or geom.is_empty:
        return None
    polys = list(_polygons(geom))
    return shapely.multipolygons(polys) if polys else None
