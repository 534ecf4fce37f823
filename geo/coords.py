"""Coordinate systems accepted on intake, all converted to WGS-84 (EPSG:4326).

GCJ-02 is the obfuscated datum Chinese map apps (Amap, Tencent) report; BD-09 is Baidu's shift
on top of it. Both are offsets of up to ~700 m, more than a small grid, so they must be undone
before assignment. CGCS2000 (EPSG:4490) differs from WGS-84 by centimetres and is taken as is.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 formula
_EE = 0.00669342162296594323
_BD_PI = math.pi * 3000.0 / 180.0


class SourceCRS(StrEnum):
    """Coordinate systems a phone or a file may report positions in."""

    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


def _out_of_china(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    # The shift is only applied inside China's rough bounding box, as the published formula does.
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_delta(
    lon: NDArray[np.float64], lat: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = lon - 105.0
    y = lat - 35.0
    sq = np.sqrt(np.abs(x))
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sq
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sq
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = ~_out_of_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def wgs84_to_gcj02(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return GCJ-02 positions for WGS-84 positions (the published forward formula)."""
    lon_a, lat_a = _arrays(lon, lat)
    dlon, dlat = _gcj_delta(lon_a, lat_a)
    return lon_a + dlon, lat_a + dlat


def geojson_to_gcj02(fc: dict) -> dict:
    """Return a GeoJSON FeatureCollection with every geometry moved onto GCJ-02 (for display
    over Amap/Gaode tiles, which are drawn in GCJ-02)."""
    import shapely
    import shapely.geometry

    def shift(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    feats = [
        {
            **ft,
            "geometry": shapely.geometry.mapping(
                shapely.transform(shapely.geometry.shape(ft["geometry"]), shift)
            )
            if ft.get("geometry")
            else ft.get("geometry"),
        }
        for ft in fc["features"]
    ]
    return {**fc, "features": feats}


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, tol: float = 1e-10, max_iter: int = 30
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return WGS-84 positions for GCJ-02 positions, inverting the forward formula iteratively.

    A one-step inverse is off by up to ~5 m; fixed-point iteration converges to 1e-10 degrees
    (sub-millimetre) in a handful of passes.
    """
    g_lon, g_lat = _arrays(lon, lat)
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if np.all(np.abs(e_lon) < tol) and np.all(np.abs(e_lat) < tol):
            break
    return w_lon, w_lat


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return GCJ-02 positions for BD-09 positions (Baidu's published inverse)."""
    b_lon, b_lat = _arrays(lon, lat)
    x = b_lon - 0.0065
    y = b_lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_PI)
    return z * np.cos(theta), z * np.sin(theta)


def gcj02_to_bd09(
    lon: ArrayLike, lat: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return BD-09 positions for GCJ-02 positions."""
    g_lon, g_lat = _arrays(lon, lat)
    z = np.sqrt(g_lon * g_lon + g_lat * g_lat) + 0.00002 * np.sin(g_lat * _BD_PI)
    theta = np.arctan2(g_lat, g_lon) + 0.000003 * np.cos(g_lon * _BD_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, tol: float = 1e-10, max_iter: int = 30
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return WGS-84 positions for BD-09 positions (exact inverse of the forward chain)."""
    b_lon, b_lat = _arrays(lon, lat)
    g_lon, g_lat = bd09_to_gcj02(b_lon, b_lat)
    # Baidu's published inverse is itself approximate; refine it against the forward formula.
    for _ in range(max_iter):
        f_lon, f_lat = gcj02_to_bd09(g_lon, g_lat)
        e_lon, e_lat = f_lon - b_lon, f_lat - b_lat
        g_lon, g_lat = g_lon - e_lon, g_lat - e_lat
        if np.all(np.abs(e_lon) < tol) and np.all(np.abs(e_lat) < tol):
            break
    return gcj02_to_wgs84(g_lon, g_lat, tol=tol, max_iter=max_iter)


def to_wgs84(
    lon: ArrayLike, lat: ArrayLike, crs: SourceCRS | str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return WGS-84 positions for positions given in any accepted source CRS."""
    match SourceCRS(crs):
        case SourceCRS.WGS84 | SourceCRS.CGCS2000:
            return _arrays(lon, lat)
        case SourceCRS.GCJ02:
            return gcj02_to_wgs84(lon, lat)
        case SourceCRS.BD09:
            return bd09_to_wgs84(lon, lat)
