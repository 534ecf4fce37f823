"""The comprehensive grids of one boundary version, held in the process for analyses and maps.

Gi*, rankings and the theme maps all work over the comprehensive grids, which tile the city;
loading their outlines once per boundary version (not per request) is what lets a map build
in a few hundred milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.cache import Versions
from geo.errors import InvalidInput

# The comprehensive grid a report counts for (on `reports r JOIN grids g ON g.code =
# r.grid_code`): its own grid, or for an exclusive grid the comprehensive grid beneath.
COMPREHENSIVE_OF = """CASE WHEN g.kind = 'exclusive' THEN (
    SELECT c.code FROM grids c WHERE c.kind = 'comprehensive' AND ST_Covers(c.geom, r.geom)
    ORDER BY c.code LIMIT 1) ELSE g.code END"""


@dataclass
class GridLayer:
    """The comprehensive grids of one boundary version, in a fixed order.

    `weights` and `coverages` hold what analyses derive from the outlines once per layer.
    """

    version: int
    codes: list[str]
    names: list[str]
    area_km2: np.ndarray
    population: np.ndarray
    geometry_json: list[str]
    frame: gpd.GeoDataFrame
    weights: dict[tuple, Any] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    coverages: dict[float, np.ndarray] = field(default_factory=dict)


_LAYERS: dict[tuple, GridLayer] = {}
_LAYER_LOCK = threading.Lock()


def grid_layer(conn: Connection, version: Versions) -> GridLayer:
    """Return the comprehensive grids of `version`, loading them once per process."""
    with _LAYER_LOCK:
        layer = _LAYERS.get(version.boundary_key)
        if layer is not None:
            return layer
        layer = _load(conn, version)
        if len(_LAYERS) > 4:  # a few databases (tests, a demo) at most
            _LAYERS.clear()
        _LAYERS[version.boundary_key] = layer
        return layer


def _load(conn: Connection, version: Versions) -> GridLayer:
    rows = conn.execute(
        text(
            "SELECT code, name, area_m2, COALESCE(population, 0) AS population, "
            "ST_AsGeoJSON(geom, 6) AS gj, ST_AsBinary(geom) AS wkb "
            "FROM grids WHERE kind = 'comprehensive' ORDER BY code"
        )
    ).all()
    if not rows:
        raise InvalidInput("no comprehensive grids are loaded: import boundaries first")
    codes = [r.code for r in rows]
    frame = gpd.GeoDataFrame(
        {"code": codes}, geometry=shapely.from_wkb([bytes(r.wkb) for r in rows]), crs=4326
    )
    return GridLayer(
        version=version.boundary,
        codes=codes,
        names=[r.name for r in rows],
        area_km2=np.array([r.area_m2 / 1e6 for r in rows]),
        population=np.array([r.population for r in rows], dtype=float),
        geometry_json=[r.gj for r in rows],
        frame=frame,
        index={c: i for i, c in enumerate(codes)},
    )


def coverage(layer: GridLayer, tolerance_deg: float) -> np.ndarray:
    """Return the layer's grids as an exact coverage, simplified with shared edges kept shared.

    Grids of two districts meet on borders noded differently; once cleaned into an exact
    coverage, any set of grids dissolves with `shapely.coverage_union_all` in about a
    millisecond (a snap-rounded `union_all` of 3,700 grids took 0.45 s). Once per layer.
    """
    with _LAYER_LOCK:
        cov = layer.coverages.get(tolerance_deg)
        if cov is None:
            geoms = np.asarray(layer.frame.geometry.values)
            cov = shapely.coverage_simplify(shapely.coverage_clean(geoms), tolerance_deg)
            layer.coverages[tolerance_deg] = cov
        return cov
