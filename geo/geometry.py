"""Small geometry helpers shared by import, validation, area queries and the demo generator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Repair:
    """A geometry made valid, its polygonal part, and why it needed repair."""

    valid: shapely.Geometry  # the input, through `make_valid` when it was invalid
    polygons: shapely.MultiPolygon | None  # the parts with area; None when there are none
    reason: str | None  # why the input was invalid (GEOS's words); None when it was valid


def repair_polygonal(geom: shapely.Geometry) -> Repair:
    """Return `geom` made valid, the polygonal part of it with area, and why it was invalid.

    `make_valid` can turn a polygon into lines or a collection: only the parts with area are
    kept, and the reason comes back so that callers say what was repaired, never silently.
    """
    reason = None
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        geom = shapely.make_valid(geom)
    polys = polygonal(geom)
    if polys is not None and polys.area == 0:
        polys = None
    return Repair(geom, polys, reason)
